// Philox-4x32-10 (Salmon et al., SC 2011; Random123's definition) for the CUDA kernels:
// the same function as src/philox.rs, which gives the maths. One round maps the counter
// (c0, c1, c2, c3) under the round key (k0, k1) to
//     (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0)),
// hi/lo the halves of the 64-bit product, M0 = 0xD2511F53, M1 = 0xCD9E8D57; ten rounds,
// the key advanced by (0x9E3779B9, 0xBB67AE85) before each round after the first.
// Integer arithmetic only: the result is the same bits on every device.
// Not used by the backend's kernels yet (no SOURCES entry includes it).

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

// Replaces ctr[0..4] by Philox-4x32-10 of (ctr, key).
__device__ __forceinline__ void philox4x32_10(unsigned int ctr[4], const unsigned int key[2])
{
    unsigned int k0 = key[0], k1 = key[1];
#pragma unroll
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const unsigned long long p0 = (unsigned long long)PHILOX_M0 * ctr[0];
        const unsigned long long p1 = (unsigned long long)PHILOX_M1 * ctr[2];
        const unsigned int c1 = ctr[1], c3 = ctr[3];
        ctr[0] = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
        ctr[1] = (unsigned int)p1;
        ctr[2] = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
        ctr[3] = (unsigned int)p0;
    }
}
