//! Philox-4×32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw (SC 2011,
//! "Parallel random numbers: as easy as 1, 2, 3"; Random123, cuRAND and JAX use it): a
//! bijection of a 128-bit counter, keyed by 64 bits, so that any draw of any stream is
//! computed directly from (key, counter) with no state to carry, on any device.
//!
//! One round maps the counter `(c0, c1, c2, c3)` under the round key `(k0, k1)` to
//!
//! ```text
//! (hi(M1·c2) ⊕ c1 ⊕ k0,  lo(M1·c2),  hi(M0·c0) ⊕ c3 ⊕ k1,  lo(M0·c0))
//! ```
//!
//! with `hi`/`lo` the upper and lower 32 bits of the 64-bit product, `M0 = 0xD2511F53`,
//! `M1 = 0xCD9E8D57`. Ten rounds; before each round after the first the key advances by the
//! Weyl increments `(0x9E3779B9, 0xBB67AE85)` (mod 2³²). `kernels/philox.cuh` is the same
//! function for the CUDA kernels; both are checked against Random123's known answers, and
//! the CUDA one against this one on the emulated device (`tests/backend_parity.rs`).
//!
//! Not used by training yet: the sampler still draws from its own generator.

/// The round multipliers.
pub const MULTIPLIERS: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
/// The per-round key increments.
pub const KEY_INCREMENTS: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];
/// Rounds of Philox-4×32-10.
pub const ROUNDS: usize = 10;

fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

fn round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mul_hi_lo(MULTIPLIERS[0], c[0]);
    let (hi1, lo1) = mul_hi_lo(MULTIPLIERS[1], c[2]);
    [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0]
}

/// The four 32-bit words Philox-4×32-10 gives for `counter` under `key`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for r in 0..ROUNDS {
        if r > 0 {
            k = [
                k[0].wrapping_add(KEY_INCREMENTS[0]),
                k[1].wrapping_add(KEY_INCREMENTS[1]),
            ];
        }
        c = round(c, k);
    }
    c
}

/// Random123's known answers for Philox-4×32-10 (its `tests/kat_vectors`, the three
/// `philox4x32 10` lines): counter, key, output.
pub const KNOWN_ANSWERS: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0; 4],
        [0; 2],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [u32::MAX; 4],
        [u32::MAX; 2],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random123_known_answers() {
        for (counter, key, want) in KNOWN_ANSWERS {
            assert_eq!(
                philox4x32_10(counter, key),
                want,
                "counter {counter:08x?} key {key:08x?}"
            );
        }
    }
}
