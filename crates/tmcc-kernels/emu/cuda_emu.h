// cuda_emu.h: a CUDA execution model on the host, so that the host C++ compiler can build
// the backend's kernels (kernels/*.cu, unchanged) and the tests can run them without a GPU.
// A TEST DEVICE, NOT A PRODUCT PATH: it says whether a kernel computes the right numbers
// for a launch geometry, never how fast it is.
//
// What it models
//   * A launch runs every block of the grid, one block after another (blockIdx x fastest,
//     then y, then z). The threads of a block are cooperative fibers (ucontext), one stack
//     each: a thread runs until it reaches a barrier or returns, then the next runnable one
//     runs. So threads really interleave at every __syncthreads, __syncwarp, shuffle and
//     ballot, and at no other point.
//   * The order in which runnable threads are resumed alternates between ascending and
//     descending thread index from one sweep to the next, so a kernel that depends on one
//     thread running before another without a barrier is likely (not certain) to differ.
//   * Warps are 32 consecutive linear thread indices (x fastest, then y, then z), as on
//     the hardware. Warp collectives (__syncwarp, __shfl_*_sync, __ballot_sync) take the
//     full mask only and need every lane of the warp alive: a partial mask, or a lane that
//     has returned while its warp mates enter a collective, stops the emulation with a
//     message (both are undefined or mask-dependent on the hardware). __syncthreads counts
//     returned threads as arrived (what Volta and later do).
//   * A barrier that can never complete (threads of a block waiting at different kinds of
//     barrier, or lanes of a warp split between a warp and a block barrier) is reported as
//     a deadlock and stops the emulation.
//   * __shared__ variables are static storage, reused by every block in turn (blocks never
//     run at the same time). Their contents are NOT reset between blocks: a kernel that
//     reads shared memory before writing it sees the previous block's values, not garbage.
//   * Atomics are plain read-modify-writes: threads never switch inside one (switches
//     happen only at barriers), so they are exact, in the emulation's thread order.
//   * Launch limits checked: at most 1024 threads per block (z at most 64), grid y and z at
//     most 65535, x at most 2^31 - 1, no dimension 0. __launch_bounds__ is ignored.
//
// What it does not model
//   * Time: no clocks, no occupancy, no memory coalescing or bank conflicts.
//   * The memory model: every access is immediately visible to every thread (no caches,
//     no reordering, no need for __threadfence); a kernel that races on global memory
//     gets one interleaving, not the hardware's. Not a race detector.
//   * Floating point: host IEEE single precision with contraction off (-ffp-contract=off),
//     so `a*b + c` rounds twice everywhere; NVRTC contracts in the kernels built with
//     --fmad=true (gemm.cu), which the tests' tolerances cover. sqrtf and fabsf are the
//     host's (correctly rounded, as CUDA's by default).
//   * Streams, events, dynamic shared memory, cooperative groups, textures, and every
//     intrinsic not defined below: a kernel that uses one fails to compile here, which is
//     the signal to add it.
//
// How the tests use it (tests/emu_device/mod.rs): each kernels/X.cu is included by a
// one-line wrapper (emu/X_emu.cpp) that registers its kernels with EMU_EXPORT; driver.cpp
// reads launches from stdin and writes results to stdout. A separate driver process was
// chosen over a shared library loaded into the test: every buffer is allocated by the
// driver with its exact size, so AddressSanitizer (the same sources built with
// -fsanitize=address) sees every out-of-bounds access, and a crash or a stopped emulation
// fails the test with the driver's message instead of killing the test process; the ASan
// runtime also needs to be the first library of its process, which a test harness
// written in Rust is not. Fiber switches are annotated for ASan
// (__sanitizer_start/finish_switch_fiber); its one-time warning that makecontext and
// swapcontext are not fully supported is expected.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// ------------------------------------------------------------------------------------------
// Qualifiers and built-in types.
// ------------------------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
        : x(x_), y(y_), z(z_) {}
};

namespace emu {

constexpr unsigned WARP_SIZE = 32;
constexpr unsigned FULL_MASK = 0xffffffffu;
constexpr size_t STACK_BYTES = 256 * 1024;

enum class State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
    ucontext_t ctx;
    char* stack = nullptr;
    uint3 tid{0, 0, 0};
    unsigned linear = 0;
    State state = State::Done;
};

struct Warp {
    unsigned lanes = 0;   // threads of the block in this warp (32 but for a last partial one)
    unsigned live = 0;    // lanes that have not returned
    unsigned arrived = 0; // lanes waiting at the warp's barrier
    unsigned long long slot[WARP_SIZE];
};

// A kernel as the driver calls it: its parameters as CUDA's kernelParams (one pointer to
// each argument's bytes), the byte size of each, and whether each is a pointer.
struct Kernel {
    const char* name;
    void (*fn)();
    void (*invoke)(void (*fn)(), void** params);
    std::vector<size_t> param_size;
    std::vector<bool> param_is_pointer;
};

// The state of the one launch in progress (launches never overlap).
struct Launch {
    const Kernel* kernel = nullptr;
    void** params = nullptr;
    uint3 grid{1, 1, 1}, block{1, 1, 1}, block_idx{0, 0, 0};
    unsigned threads = 0;
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    unsigned block_live = 0, block_arrived = 0;
    Fiber* current = nullptr;
    ucontext_t scheduler;
    unsigned long sweep = 0;
#ifdef EMU_ASAN
    const void* scheduler_stack = nullptr;
    size_t scheduler_stack_size = 0;
#endif
};

inline Launch g;

[[noreturn]] inline void fail(const char* what) {
    const Launch& l = g;
    fprintf(stderr, "cuda_emu: kernel %s, block (%u,%u,%u)", l.kernel ? l.kernel->name : "?",
            l.block_idx.x, l.block_idx.y, l.block_idx.z);
    if (l.current)
        fprintf(stderr, ", thread (%u,%u,%u)", l.current->tid.x, l.current->tid.y,
                l.current->tid.z);
    fprintf(stderr, ": %s\n", what);
    fflush(stderr);
    _Exit(70);
}

// Switches from the running context to `to` (whose stack is given for ASan);
// `leaving_for_good` when the running fiber has returned and is never resumed.
inline void switch_to(ucontext_t* from, ucontext_t* to, const void* to_stack, size_t to_size,
                      bool leaving_for_good) {
#ifdef EMU_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(leaving_for_good ? nullptr : &fake_stack, to_stack, to_size);
    swapcontext(from, to);
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
    (void)to_stack;
    (void)to_size;
    (void)leaving_for_good;
    swapcontext(from, to);
#endif
}

inline void to_scheduler(bool leaving_for_good) {
#ifdef EMU_ASAN
    switch_to(&g.current->ctx, &g.scheduler, g.scheduler_stack, g.scheduler_stack_size,
              leaving_for_good);
#else
    switch_to(&g.current->ctx, &g.scheduler, nullptr, 0, leaving_for_good);
#endif
}

inline Warp& my_warp() { return g.warps[g.current->linear / WARP_SIZE]; }
inline unsigned my_lane() { return g.current->linear % WARP_SIZE; }

inline void release_block_barrier() {
    g.block_arrived = 0;
    for (unsigned i = 0; i < g.threads; ++i)
        if (g.fibers[i].state == State::AtBlockBarrier) g.fibers[i].state = State::Ready;
}

inline void release_warp_barrier(unsigned w) {
    g.warps[w].arrived = 0;
    const unsigned end = w * WARP_SIZE + g.warps[w].lanes;
    for (unsigned i = w * WARP_SIZE; i < end; ++i)
        if (g.fibers[i].state == State::AtWarpBarrier) g.fibers[i].state = State::Ready;
}

inline void block_barrier() {
    g.current->state = State::AtBlockBarrier;
    if (++g.block_arrived == g.block_live) release_block_barrier();
    to_scheduler(false);
}

inline void warp_barrier(unsigned mask) {
    if (mask != FULL_MASK) fail("warp collective with a partial mask (not emulated)");
    Warp& w = my_warp();
    if (w.lanes != WARP_SIZE) fail("warp collective in a partial warp (not emulated)");
    if (w.live != w.lanes) fail("warp collective after a lane of the warp returned");
    g.current->state = State::AtWarpBarrier;
    if (++w.arrived == w.live) release_warp_barrier(g.current->linear / WARP_SIZE);
    to_scheduler(false);
}

// Every lane publishes `v`, then reads lane `src(lane)`'s value (its own if src is out of
// range); the second barrier keeps the slots until every lane has read.
template <class T, class Src>
T warp_exchange(unsigned mask, T v, Src src) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffle of a type over 8 bytes");
    Warp& w = my_warp();
    const unsigned lane = my_lane();
    memcpy(&w.slot[lane], &v, sizeof(T));
    warp_barrier(mask);
    const int from = src(lane);
    T out = v;
    if (from >= 0) memcpy(&out, &w.slot[from], sizeof(T));
    warp_barrier(mask);
    return out;
}

inline void fiber_main() {
    Fiber* f = g.current;
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g.scheduler_stack, &g.scheduler_stack_size);
#endif
    g.kernel->invoke(g.kernel->fn, g.params);
    f->state = State::Done;
    --g.block_live;
    Warp& w = my_warp();
    --w.live;
    if (w.arrived > 0) fail("a lane returned while its warp waits in a warp collective");
    if (g.block_arrived > 0 && g.block_arrived == g.block_live) release_block_barrier();
    to_scheduler(true);
    fail("a returned thread was resumed");
}

inline void run_block() {
    for (unsigned i = 0; i < g.threads; ++i) {
        Fiber& f = g.fibers[i];
        const unsigned bx = g.block.x, by = g.block.y;
        f.linear = i;
        f.tid = uint3{i % bx, (i / bx) % by, i / (bx * by)};
        f.state = State::Ready;
        if (getcontext(&f.ctx) != 0) fail("getcontext failed");
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = STACK_BYTES;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_main, 0);
    }
    for (unsigned w = 0; w < g.warps.size(); ++w) {
        const unsigned lanes = std::min(WARP_SIZE, g.threads - w * WARP_SIZE);
        g.warps[w].lanes = lanes;
        g.warps[w].live = lanes;
        g.warps[w].arrived = 0;
    }
    g.block_live = g.threads;
    g.block_arrived = 0;
    while (g.block_live > 0) {
        bool resumed = false;
        const bool down = (g.sweep++ & 1) != 0;
        for (unsigned s = 0; s < g.threads; ++s) {
            Fiber& f = g.fibers[down ? g.threads - 1 - s : s];
            if (f.state != State::Ready) continue;
            resumed = true;
            g.current = &f;
            switch_to(&g.scheduler, &f.ctx, f.stack, STACK_BYTES, false);
            g.current = nullptr;
        }
        if (!resumed && g.block_live > 0)
            fail("deadlock: every live thread waits at a barrier that cannot complete");
    }
}

// Runs `kernel` over the grid; returns an empty string or what is wrong with the launch.
inline std::string launch(const Kernel& kernel, dim3 grid, dim3 block, void** params) {
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0)
        return "a grid or block dimension is 0";
    if (threads > 1024 || block.z > 64) return "more than 1024 threads per block (or z > 64)";
    if (grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
        return "grid dimension over the hardware limit";
    g.kernel = &kernel;
    g.params = params;
    g.grid = uint3{grid.x, grid.y, grid.z};
    g.block = uint3{block.x, block.y, block.z};
    g.threads = (unsigned)threads;
    if (g.fibers.size() < g.threads) g.fibers.resize(g.threads);
    for (unsigned i = 0; i < g.threads; ++i)
        if (!g.fibers[i].stack) {
            g.fibers[i].stack = static_cast<char*>(malloc(STACK_BYTES));
            if (!g.fibers[i].stack) return "out of memory for thread stacks";
        }
    g.warps.assign((g.threads + WARP_SIZE - 1) / WARP_SIZE, Warp{});
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                g.block_idx = uint3{x, y, z};
                run_block();
            }
    g.kernel = nullptr;
    return std::string();
}

template <class T>
T load_param(void* p) {
    T v;
    memcpy(&v, p, sizeof(T));
    return v;
}

template <class... A, size_t... I>
void call(void (*fn)(A...), void** params, std::index_sequence<I...>) {
    fn(load_param<A>(params[I])...);
}

template <class... A>
void invoke(void (*fn)(), void** params) {
    call(reinterpret_cast<void (*)(A...)>(fn), params, std::index_sequence_for<A...>{});
}

inline std::vector<Kernel>& registry() {
    static std::vector<Kernel> kernels;
    return kernels;
}

template <class... A>
int register_kernel(const char* name, void (*fn)(A...)) {
    registry().push_back(Kernel{name, reinterpret_cast<void (*)()>(fn), &invoke<A...>,
                                {sizeof(A)...}, {std::is_pointer<A>::value...}});
    return 0;
}

inline const uint3& thread_idx() { return g.current->tid; }

} // namespace emu

// Makes kernel `name` (an extern "C" __global__ function defined above) launchable.
#define EMU_EXPORT(name) static const int emu_export_##name = ::emu::register_kernel(#name, &name);

// ------------------------------------------------------------------------------------------
// What kernels see.
// ------------------------------------------------------------------------------------------

#define threadIdx (::emu::thread_idx())
#define blockIdx (static_cast<const uint3&>(::emu::g.block_idx))
#define blockDim (static_cast<const uint3&>(::emu::g.block))
#define gridDim (static_cast<const uint3&>(::emu::g.grid))
#define warpSize 32

inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned mask = emu::FULL_MASK) { emu::warp_barrier(mask); }

template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    return emu::warp_exchange(mask, v, [=](unsigned lane) {
        return (int)(lane / width * width) + src_lane % width;
    });
}

template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return emu::warp_exchange(mask, v, [=](unsigned lane) {
        const unsigned src = lane + delta;
        return src / width == lane / width ? (int)src : -1;
    });
}

template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return emu::warp_exchange(mask, v, [=](unsigned lane) {
        return lane % width >= delta ? (int)(lane - delta) : -1;
    });
}

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return emu::warp_exchange(mask, v, [=](unsigned lane) {
        const unsigned src = lane ^ (unsigned)lane_mask;
        return src / width <= lane / width ? (int)src : -1;
    });
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
    emu::Warp& w = emu::my_warp();
    w.slot[emu::my_lane()] = predicate != 0;
    emu::warp_barrier(mask);
    unsigned bits = 0;
    for (unsigned i = 0; i < emu::WARP_SIZE; ++i)
        if (w.slot[i]) bits |= 1u << i;
    emu::warp_barrier(mask);
    return bits;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }

template <class T>
T atomicAdd(T* address, T v) {
    const T old = *address;
    *address = old + v;
    return old;
}
