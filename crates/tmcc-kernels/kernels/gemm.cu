// Batched SGEMM of the tmcc CUDA backend: for every instance z of a batch,
//
//     C_z <- alpha * op(A_z) * op(B_z) + beta * C_z
//
// op(A) is m x k and op(B) is k x n, all matrices row-major. Instance z's operand starts
// at `off + z * stride` of its buffer (stride 0 shares one operand between instances).
//   ta = 0: A stored m x k, element (i, p) at A[i*k + p];  ta = 1: stored k x m, at A[p*m + i]
//   tb = 0: B stored k x n, element (p, j) at B[p*n + j];  tb = 1: stored n x k, at B[j*k + p]
// beta == 0 never reads C (as BLAS: NaN in C does not propagate).
//
// Tiling: a block of 16 x 16 threads computes a (16*TM) x (16*TN) tile of C. Thread
// (tx, ty) owns rows ty + 16*a and columns tx + 16*b of the tile (a < TM, b < TN), so
// shared-memory reads are broadcasts (A) or consecutive (B) and the stores of C are
// coalesced along rows. The k dimension advances in slices of BK = 16, staged in shared
// memory; the staging loads are mapped so that consecutive threads read consecutive
// addresses for either storage order. Grid: x over column tiles, y over row tiles,
// z over instances (z0 + blockIdx.z, the host splits batches above 65535).

#define GEMM_BK 16
#define GEMM_THREADS 256

template <int TM, int TN>
__device__ __forceinline__ void gemm_tile(
    unsigned int m, unsigned int n, unsigned int k, float alpha, float beta,
    const float* __restrict__ A, unsigned long long a_off, unsigned long long a_stride, int ta,
    const float* __restrict__ B, unsigned long long b_off, unsigned long long b_stride, int tb,
    float* __restrict__ C, unsigned long long c_off, unsigned long long c_stride,
    unsigned long long z0)
{
    const int BM = 16 * TM;
    const int BN = 16 * TN;
    __shared__ float As[GEMM_BK][16 * TM + 1];
    __shared__ float Bs[GEMM_BK][16 * TN + 1];

    const unsigned long long z = z0 + blockIdx.z;
    const float* a = A + a_off + z * a_stride;
    const float* b = B + b_off + z * b_stride;
    float* c = C + c_off + z * c_stride;

    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int tid = ty * 16 + tx;
    const unsigned int row0 = blockIdx.y * BM;
    const unsigned int col0 = blockIdx.x * BN;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
            acc[i][j] = 0.0f;

    for (unsigned int k0 = 0; k0 < k; k0 += GEMM_BK) {
        // Stage op(A)[row0 .. row0+BM, k0 .. k0+BK] as As[p][i].
        for (int e = tid; e < BM * GEMM_BK; e += GEMM_THREADS) {
            int i, p;
            if (ta) { i = e % BM; p = e / BM; }        // consecutive threads: consecutive i
            else    { p = e % GEMM_BK; i = e / GEMM_BK; } // consecutive threads: consecutive p
            const unsigned int gi = row0 + i;
            const unsigned int gp = k0 + p;
            float v = 0.0f;
            if (gi < m && gp < k)
                v = ta ? a[(unsigned long long)gp * m + gi] : a[(unsigned long long)gi * k + gp];
            As[p][i] = v;
        }
        // Stage op(B)[k0 .. k0+BK, col0 .. col0+BN] as Bs[p][j].
        for (int e = tid; e < GEMM_BK * BN; e += GEMM_THREADS) {
            int j, p;
            if (tb) { p = e % GEMM_BK; j = e / GEMM_BK; } // consecutive threads: consecutive p
            else    { j = e % BN; p = e / BN; }           // consecutive threads: consecutive j
            const unsigned int gj = col0 + j;
            const unsigned int gp = k0 + p;
            float v = 0.0f;
            if (gj < n && gp < k)
                v = tb ? b[(unsigned long long)gj * k + gp] : b[(unsigned long long)gp * n + gj];
            Bs[p][j] = v;
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < GEMM_BK; ++p) {
            float av[TM], bv[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) av[i] = As[p][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < TN; ++j) bv[j] = Bs[p][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j)
                    acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const unsigned int gi = row0 + ty + 16 * i;
        if (gi >= m) continue;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const unsigned int gj = col0 + tx + 16 * j;
            if (gj >= n) continue;
            float* dst = c + (unsigned long long)gi * n + gj;
            const float v = alpha * acc[i][j];
            *dst = (beta == 0.0f) ? v : v + beta * *dst;
        }
    }
}

// 64 x 64 tiles (4 x 4 per thread): the general case.
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) gemm_64(
    unsigned int m, unsigned int n, unsigned int k, float alpha, float beta,
    const float* A, unsigned long long a_off, unsigned long long a_stride, int ta,
    const float* B, unsigned long long b_off, unsigned long long b_stride, int tb,
    float* C, unsigned long long c_off, unsigned long long c_stride, unsigned long long z0)
{
    gemm_tile<4, 4>(m, n, k, alpha, beta, A, a_off, a_stride, ta, B, b_off, b_stride, tb,
                    C, c_off, c_stride, z0);
}

// 32 x 32 tiles (2 x 2 per thread): small or skinny products (e.g. n = 1).
extern "C" __global__ void __launch_bounds__(GEMM_THREADS) gemm_32(
    unsigned int m, unsigned int n, unsigned int k, float alpha, float beta,
    const float* A, unsigned long long a_off, unsigned long long a_stride, int ta,
    const float* B, unsigned long long b_off, unsigned long long b_stride, int tb,
    float* C, unsigned long long c_off, unsigned long long c_stride, unsigned long long z0)
{
    gemm_tile<2, 2>(m, n, k, alpha, beta, A, a_off, a_stride, ta, B, b_off, b_stride, tb,
                    C, c_off, c_stride, z0);
}
