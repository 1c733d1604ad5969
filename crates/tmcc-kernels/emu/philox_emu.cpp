// kernels/philox.cuh on the emulated device (see cuda_emu.h), behind a test kernel:
// element i of a grid-stride loop writes philox4x32_10 of the counter
// (lo(i) ^ c0, hi(i) ^ c1, c2, c3) under the key (k0, k1) to out[4i .. 4i+4]
// (tests/backend_parity.rs checks it on Random123's answers and against src/philox.rs).
#include "cuda_emu.h"
#include "../kernels/philox.cuh"

extern "C" __global__ void emu_philox_fill(
    unsigned int* out, unsigned long long n, unsigned int k0, unsigned int k1,
    unsigned int c0, unsigned int c1, unsigned int c2, unsigned int c3)
{
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
         i < n; i += (unsigned long long)gridDim.x * blockDim.x) {
        unsigned int ctr[4] = {(unsigned int)i ^ c0, (unsigned int)(i >> 32) ^ c1, c2, c3};
        const unsigned int key[2] = {k0, k1};
        philox4x32_10(ctr, key);
        for (int w = 0; w < 4; ++w) out[4 * i + w] = ctr[w];
    }
}

EMU_EXPORT(emu_philox_fill)
