// Kernels that test the emulation itself (not part of the CUDA backend): the warp
// collectives and the block barrier, shared memory and atomics, on known answers
// (tests/backend_parity.rs, `emulation_*`).
#include "cuda_emu.h"

// One block of 64 threads (two warps); thread t writes 5 words at out[5t..]:
// shfl_down by 1, shfl_xor with 5, shfl_up by 3, shfl from lane 7 (each of its lane
// number), and the ballot of "lane is odd or in warp 1".
extern "C" __global__ void emu_selftest_warp(unsigned int* out)
{
    const unsigned int t = threadIdx.x;
    const unsigned int lane = t % 32;
    unsigned int* o = out + 5 * t;
    o[0] = __shfl_down_sync(0xffffffffu, lane, 1);
    o[1] = __shfl_xor_sync(0xffffffffu, lane, 5);
    o[2] = __shfl_up_sync(0xffffffffu, lane, 3);
    o[3] = __shfl_sync(0xffffffffu, lane, 7);
    o[4] = __ballot_sync(0xffffffffu, (lane & 1) || t >= 32);
}

// Blocks of 96 threads (three warps); block b, thread t: out[b*96 + t] is the value thread
// 95 - t wrote to shared memory before the barrier, and every thread adds 1 to total[0].
extern "C" __global__ void emu_selftest_block(float* out, float* total)
{
    __shared__ float buf[96];
    const unsigned int t = threadIdx.x;
    buf[t] = (float)(blockIdx.x * 1000 + t);
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = buf[blockDim.x - 1 - t];
    atomicAdd(total, 1.0f);
}

EMU_EXPORT(emu_selftest_warp)
EMU_EXPORT(emu_selftest_block)
