// The emulated device's process: reads requests from stdin, runs them with cuda_emu.h and
// writes the answers to stdout (binary, native byte order; messages go to stderr).
// tests/emu_device/mod.rs is the other end.
//
// Request: u32 op.
//   op 1, list:   answer u32 count, then per kernel: u32 name length, name, u32 parameter
//                 count, per parameter: u64 byte size, u8 is-a-pointer.
//   op 2, launch: u32 name length, name, u32 grid[3], u32 block[3], u32 parameter count,
//                 per parameter: u8 kind (0 value, 1 buffer read, 2 buffer read and
//                 written back), u64 byte length, the bytes. Every buffer is allocated
//                 with exactly its byte length (what AddressSanitizer checks against).
//                 Answer u32 status: 0, then the bytes of every kind-2 buffer in order;
//                 or 1, u32 length, the reason the launch was refused.
// End of input: exit 0.
#include "cuda_emu.h"

namespace {

bool read_bytes(void* dst, size_t n) { return n == 0 || fread(dst, 1, n, stdin) == n; }

template <class T>
T read_value() {
    T v{};
    if (!read_bytes(&v, sizeof v)) {
        fprintf(stderr, "cuda_emu driver: truncated request\n");
        exit(2);
    }
    return v;
}

template <class T>
void write_value(T v) {
    fwrite(&v, sizeof v, 1, stdout);
}

void write_text(const std::string& s) {
    write_value<uint32_t>((uint32_t)s.size());
    fwrite(s.data(), 1, s.size(), stdout);
}

void list() {
    const std::vector<emu::Kernel>& ks = emu::registry();
    write_value<uint32_t>((uint32_t)ks.size());
    for (const emu::Kernel& k : ks) {
        write_text(k.name);
        write_value<uint32_t>((uint32_t)k.param_size.size());
        for (size_t i = 0; i < k.param_size.size(); ++i) {
            write_value<uint64_t>(k.param_size[i]);
            write_value<uint8_t>(k.param_is_pointer[i] ? 1 : 0);
        }
    }
}

struct Param {
    uint8_t kind;
    std::vector<unsigned char> value; // kind 0
    void* buffer = nullptr;           // kinds 1 and 2
    size_t bytes = 0;
};

std::string check_params(const emu::Kernel& k, const std::vector<Param>& ps) {
    if (ps.size() != k.param_size.size())
        return std::string(k.name) + ": " + std::to_string(ps.size()) + " arguments, the kernel takes " +
               std::to_string(k.param_size.size());
    for (size_t i = 0; i < ps.size(); ++i) {
        const bool is_buffer = ps[i].kind != 0;
        if (is_buffer != k.param_is_pointer[i])
            return std::string(k.name) + ": argument " + std::to_string(i) +
                   (is_buffer ? " is a buffer, the kernel takes a value"
                              : " is a value, the kernel takes a pointer");
        if (!is_buffer && ps[i].value.size() != k.param_size[i])
            return std::string(k.name) + ": argument " + std::to_string(i) + " has " +
                   std::to_string(ps[i].value.size()) + " bytes, the kernel takes " +
                   std::to_string(k.param_size[i]);
    }
    return std::string();
}

void launch() {
    const uint32_t name_len = read_value<uint32_t>();
    std::string name(name_len, '\0');
    if (!read_bytes(&name[0], name_len)) exit(2);
    uint32_t dims[6];
    for (uint32_t& d : dims) d = read_value<uint32_t>();
    const uint32_t count = read_value<uint32_t>();
    std::vector<Param> ps(count);
    for (Param& p : ps) {
        p.kind = read_value<uint8_t>();
        const uint64_t bytes = read_value<uint64_t>();
        if (p.kind == 0) {
            p.value.resize(bytes);
            if (!read_bytes(p.value.data(), bytes)) exit(2);
        } else {
            p.bytes = bytes;
            p.buffer = malloc(bytes);
            if ((!p.buffer && bytes > 0) || !read_bytes(p.buffer, bytes)) exit(2);
        }
    }
    const emu::Kernel* kernel = nullptr;
    for (const emu::Kernel& k : emu::registry())
        if (name == k.name) kernel = &k;
    std::string why = kernel ? check_params(*kernel, ps) : "no kernel named " + name;
    if (why.empty()) {
        std::vector<void*> params(count);
        for (uint32_t i = 0; i < count; ++i)
            params[i] = ps[i].kind == 0 ? static_cast<void*>(ps[i].value.data())
                                        : static_cast<void*>(&ps[i].buffer);
        why = emu::launch(*kernel, dim3(dims[0], dims[1], dims[2]),
                          dim3(dims[3], dims[4], dims[5]), params.data());
    }
    if (!why.empty()) {
        write_value<uint32_t>(1);
        write_text(why);
    } else {
        write_value<uint32_t>(0);
        for (const Param& p : ps)
            if (p.kind == 2) fwrite(p.buffer, 1, p.bytes, stdout);
    }
    for (Param& p : ps) free(p.buffer);
}

} // namespace

int main() {
    for (;;) {
        uint32_t op;
        if (fread(&op, sizeof op, 1, stdin) != 1) return 0;
        if (op == 1)
            list();
        else if (op == 2)
            launch();
        else {
            fprintf(stderr, "cuda_emu driver: unknown request %u\n", op);
            return 2;
        }
        fflush(stdout);
    }
}
