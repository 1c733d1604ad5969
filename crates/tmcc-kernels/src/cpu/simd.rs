//! Run-time choice of the vector width for the hand-written loops of the CPU backend.
//!
//! The workspace builds for the baseline `x86-64` target (SSE2), so a plain loop would use
//! 128-bit vectors only. [`multiversion!`] compiles a kernel body three times (AVX-512,
//! AVX2+FMA, baseline) and picks one per call from the CPU's features, detected once.
//! No FMA contraction happens implicitly (Rust never fuses `a*b + c`), so every version
//! rounds exactly like the baseline: the choice changes speed, never results.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction-set level in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 F/VL/BW/DQ (x86-64-v4).
    V4,
    /// AVX2 + FMA (x86-64-v3).
    V3,
    /// Whatever the build target allows.
    Base,
}

static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);

/// The detected level (cached after the first call).
#[inline]
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Level::V4,
        1 => Level::V3,
        2 => Level::Base,
        _ => {
            let l = detect();
            LEVEL.store(
                match l {
                    Level::V4 => 0,
                    Level::V3 => 1,
                    Level::Base => 2,
                },
                Ordering::Relaxed,
            );
            l
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if std::env::var_os("TMCC_NO_SIMD").is_some() {
        return Level::Base;
    }
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
    {
        Level::V4
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Level::V3
    } else {
        Level::Base
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Base
}

/// Defines `fn name<T: Scalar>(args) -> R { body }` compiled for each [`Level`] and
/// dispatched at run time. The body must be safe code; it is inlined into each version.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<$T:ident: Scalar>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$T: Scalar>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$T: Scalar>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,avx,bmi1,bmi2,lzcnt,popcnt")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4<$T: Scalar>($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma,avx,bmi1,bmi2,lzcnt,popcnt")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3<$T: Scalar>($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                match $crate::cpu::simd::level() {
                    // SAFETY: the CPU was detected to support the enabled features.
                    $crate::cpu::simd::Level::V4 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above.
                    $crate::cpu::simd::Level::V3 => return unsafe { v3($($arg),*) },
                    $crate::cpu::simd::Level::Base => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;
