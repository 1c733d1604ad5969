// Kernels of the tmcc CUDA backend that read the sparse batch x: a CSR matrix of
// rows = K*B rows (instance-major) over F columns, sorted unique columns per row.
//
//   gather:  Y[row, j] = beta*Y[row, j] + sum_{(f,v) in row} v * T_k[f*trs + j*tcs]
//   scatter: T_k[f*trs + j*tcs] += sum_{rows b of k} v_bf * Y[row, j]      (atomicAdd)
//   loss:    row_loss[row] = scale * sum_c imp_c * l(out[row, c] - y[row, c]), y sparse labels (CSR)
//            dout[row, c]  = scale * imp_c * l'(out[row, c] - y_c)
//
// with T_k = table + t_off + k*t_stride and k = row / B. Each warp owns one row (blocks of
// 32 x 8 threads: eight rows per block); the lanes cover the row's columns j. Row offsets
// are clamped to nnz and columns >= F are skipped, so a malformed batch cannot read or
// write outside the buffers. Compiled with --fmad=false: the gather adds its terms in the
// CPU backend's order with the CPU's rounding (bitwise equal results); the loss gradient
// is computed by the CPU's formula (bitwise equal), only the row sums differ in order.

typedef unsigned long long u64;

#define ROWS_PER_BLOCK 8

__device__ __forceinline__ void row_range(
    const unsigned int* __restrict__ row_ptr, u64 row, u64 nnz, u64* lo, u64* hi)
{
    u64 a = row_ptr[row];
    u64 b = row_ptr[row + 1];
    if (a > nnz) a = nnz;
    if (b > nnz) b = nnz;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

extern "C" __global__ void __launch_bounds__(256) gather_f32(
    u64 rows, u64 rows_per_instance, u64 cols, u64 width,
    const unsigned int* __restrict__ row_ptr, const unsigned int* __restrict__ col,
    const float* __restrict__ val, u64 nnz,
    const float* __restrict__ table, u64 t_off, u64 t_stride, u64 trs, u64 tcs,
    float beta, float* __restrict__ y)
{
    const u64 row = (u64)blockIdx.x * ROWS_PER_BLOCK + threadIdx.y;
    if (row >= rows) return;
    u64 lo, hi;
    row_range(row_ptr, row, nnz, &lo, &hi);
    const float* t = table + t_off + (row / rows_per_instance) * t_stride;
    float* yr = y + row * width;
    for (u64 j = threadIdx.x; j < width; j += 32) {
        float acc = (beta == 0.0f) ? 0.0f : (beta == 1.0f ? yr[j] : yr[j] * beta);
        for (u64 e = lo; e < hi; ++e) {
            const u64 f = col[e];
            if (f < cols) acc = acc + val[e] * t[f * trs + j * tcs];
        }
        yr[j] = acc;
    }
}

// The transpose of the gather. Rows of one instance hit the same table rows, so the
// accumulation uses atomicAdd (the order of the additions is not fixed: results agree
// with the CPU to rounding, not bit for bit).
extern "C" __global__ void __launch_bounds__(256) scatter_f32(
    u64 rows, u64 rows_per_instance, u64 cols, u64 width,
    const unsigned int* __restrict__ row_ptr, const unsigned int* __restrict__ col,
    const float* __restrict__ val, u64 nnz,
    const float* __restrict__ y, float* __restrict__ table, u64 t_off, u64 t_stride,
    u64 trs, u64 tcs)
{
    const u64 row = (u64)blockIdx.x * ROWS_PER_BLOCK + threadIdx.y;
    if (row >= rows) return;
    u64 lo, hi;
    row_range(row_ptr, row, nnz, &lo, &hi);
    float* t = table + t_off + (row / rows_per_instance) * t_stride;
    const float* yr = y + row * width;
    for (u64 e = lo; e < hi; ++e) {
        const u64 f = col[e];
        if (f >= cols) continue;
        const float v = val[e];
        for (u64 j = threadIdx.x; j < width; j += 32)
            atomicAdd(&t[f * trs + j * tcs], v * yr[j]);
    }
}

// One warp per row. The row is walked in chunks of 32 columns (lane = column within the
// chunk); the labels of the chunk's active columns (a prefix of the remaining sorted CSR
// entries, at most 32) are staged in shared memory, then every lane forms
// e = out - y exactly as the CPU does and the warp reduces its partial sums by shuffles.
template <int L1>
__device__ __forceinline__ void loss_row(
    u64 rows, u64 cols, const float* __restrict__ out,
    const unsigned int* __restrict__ row_ptr, const unsigned int* __restrict__ col,
    const float* __restrict__ val, u64 nnz, const float* __restrict__ imp,
    float scale, float* __restrict__ row_loss, float* dout, int want_grad)
{
    __shared__ float label[ROWS_PER_BLOCK][32];
    __shared__ int active[ROWS_PER_BLOCK][32];
    const unsigned int full = 0xffffffffu;
    const int w = threadIdx.y;
    const int lane = threadIdx.x;
    const u64 row = (u64)blockIdx.x * ROWS_PER_BLOCK + w;
    if (row >= rows) return; // uniform across the warp
    u64 lo, hi;
    row_range(row_ptr, row, nnz, &lo, &hi);
    const float* o = out + row * cols;
    float* d = dout + row * cols;
    u64 next = lo;
    float acc = 0.0f;
    for (u64 c0 = 0; c0 < cols; c0 += 32) {
        active[w][lane] = 0;
        __syncwarp();
        const u64 e = next + lane;
        int in_chunk = 0;
        if (e < hi) {
            const u64 c = col[e];
            if (c >= c0 && c < c0 + 32 && c < cols) {
                label[w][c - c0] = val[e];
                active[w][c - c0] = 1;
                in_chunk = 1;
            }
        }
        next += __popc(__ballot_sync(full, in_chunk));
        __syncwarp();
        const u64 c = c0 + lane;
        if (c < cols) {
            const float oc = o[c];
            float err = oc;
            if (active[w][lane]) {
                err = oc - label[w][lane];
            }
            const float wc = imp[c];
            float l, g;
            if (L1) {
                l = fabsf(err);
                g = err > 0.0f ? 1.0f : (err < 0.0f ? -1.0f : 0.0f);
            } else {
                l = err * err;
                g = err + err;
            }
            acc = acc + wc * l;
            if (want_grad) d[c] = scale * wc * g;
        }
        __syncwarp();
    }
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) acc += __shfl_down_sync(full, acc, s);
    if (lane == 0) row_loss[row] = scale * acc;
}

// kind: 0 = L2, 1 = L1. `dout` is only written when want_grad != 0.
extern "C" __global__ void __launch_bounds__(256) loss_f32(
    int kind, u64 rows, u64 cols, const float* __restrict__ out,
    const unsigned int* __restrict__ row_ptr, const unsigned int* __restrict__ col,
    const float* __restrict__ val, u64 nnz, const float* __restrict__ imp,
    float scale, float* __restrict__ row_loss, float* dout, int want_grad)
{
    if (kind == 1)
        loss_row<1>(rows, cols, out, row_ptr, col, val, nnz, imp, scale,
                    row_loss, dout, want_grad);
    else
        loss_row<0>(rows, cols, out, row_ptr, col, val, nnz, imp, scale,
                    row_loss, dout, want_grad);
}
