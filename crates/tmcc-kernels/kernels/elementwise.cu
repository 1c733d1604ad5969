// Dense element-wise kernels of the tmcc CUDA backend: fill, bias add, column sums,
// ReLU and its mask, axpy and the fused Adam/AdamW update. Compiled with --fmad=false so
// that every element is rounded exactly as the CPU backend rounds it (Rust does not fuse
// multiply-adds): relu, relu_mask, axpy, add_bias and adam agree with the CPU bit for bit.
//
// Element-wise kernels are grid-stride loops over 64-bit indices (one launch for all
// instances: the buffers hold every instance back to back).

typedef unsigned long long u64;

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void fill_f32(float* __restrict__ x, u64 n, float value)
{
    GRID_STRIDE(i, n) x[i] = value;
}

// y[(k*rows + b)*width + j] += bias[off + k*stride + j] for the first `n` elements of y
// (n a multiple of width).
extern "C" __global__ void add_bias_f32(
    float* __restrict__ y, u64 n, u64 rows, u64 width,
    const float* __restrict__ bias, u64 off, u64 stride)
{
    GRID_STRIDE(i, n) {
        const u64 row = i / width;
        const u64 j = i - row * width;
        const u64 k = row / rows;
        y[i] = y[i] + bias[off + k * stride + j];
    }
}

// out[off + k*stride + j] = sum_b y[(k*rows + b)*width + j]. One block of 32 x 8 threads
// per (instance, 32-column tile): threadIdx.x is the column (coalesced reads along a
// row), threadIdx.y strides over the rows, then a fixed-order shared-memory reduction
// (deterministic). blockIdx.x = k_local * col_tiles + tile, instance k = k0 + k_local.
extern "C" __global__ void __launch_bounds__(256) col_sum_f32(
    const float* __restrict__ y, u64 rows, u64 width, u64 col_tiles,
    float* __restrict__ out, u64 off, u64 stride, u64 k0)
{
    __shared__ float part[8][33];
    const u64 k = k0 + blockIdx.x / col_tiles;
    const u64 tile = blockIdx.x % col_tiles;
    const u64 j = tile * 32 + threadIdx.x;
    float s = 0.0f;
    if (j < width) {
        const float* yk = y + k * rows * width + j;
        for (u64 b = threadIdx.y; b < rows; b += 8) s += yk[b * width];
    }
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < width) {
        float t = 0.0f;
#pragma unroll
        for (int r = 0; r < 8; ++r) t += part[r][threadIdx.x];
        out[off + k * stride + j] = t;
    }
}

extern "C" __global__ void relu_f32(const float* __restrict__ pre, float* __restrict__ h, u64 n)
{
    GRID_STRIDE(i, n) {
        const float p = pre[i];
        h[i] = p > 0.0f ? p : 0.0f;
    }
}

extern "C" __global__ void relu_mask_f32(
    const float* __restrict__ pre, float* __restrict__ grad, u64 n)
{
    GRID_STRIDE(i, n) {
        if (pre[i] <= 0.0f) grad[i] = 0.0f;
    }
}

extern "C" __global__ void axpy_f32(
    float alpha, const float* __restrict__ x, float* __restrict__ y, u64 n)
{
    GRID_STRIDE(i, n) y[i] = y[i] + alpha * x[i];
}

// PyTorch's Adam (AdamW: decay = 1 - lr*wd), the CPU backend's formula and rounding:
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
//   p = p*decay - (lr/bc1)*m / (sqrt(v)/sqrt(bc2) + eps)
// The scalars one_m_b1 = 1-b1, one_m_b2 = 1-b2, decay, step = lr/bc1 and
// sqrt_bc2 = sqrt(bc2) are computed on the host in f32, as the CPU backend does.
extern "C" __global__ void adam_f32(
    float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
    float* __restrict__ v, u64 n, float b1, float one_m_b1, float b2, float one_m_b2,
    float eps, float decay, float step, float sqrt_bc2)
{
    GRID_STRIDE(i, n) {
        const float gi = g[i];
        const float mi = b1 * m[i] + one_m_b1 * gi;
        const float vi = b2 * v[i] + one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / sqrt_bc2 + eps;
        p[i] = p[i] * decay - step * mi / denom;
    }
}
