//! The floating-point element types the kernels run on (`f32` for training, `f64` for
//! gradient checks), and the one place where a generic kernel reaches the matrix multiply
//! of the right precision.

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// `f32` or `f64`.
pub trait Scalar:
    num_traits::Float + Debug + Display + Default + Send + Sync + Sum + std::ops::AddAssign + 'static
{
    /// `"f32"` or `"f64"`, as written in checkpoints and reports.
    const DTYPE: &'static str;

    fn from_f64(x: f64) -> Self;
    fn as_f64(self) -> f64;

    /// `C ← α·A·B + β·C` for an `m×k` matrix `A` and a `k×n` matrix `B`, each element
    /// addressed by a row stride and a column stride (so a transpose is a stride swap).
    ///
    /// # Safety
    /// Every index `i·rs + j·cs` inside the stated shapes must be in bounds of its
    /// allocation, and `C` must not alias `A` or `B`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_strided(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Scalar for f32 {
    const DTYPE: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    unsafe fn gemm_strided(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl Scalar for f64 {
    const DTYPE: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    unsafe fn gemm_strided(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
