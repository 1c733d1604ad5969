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

/// `C ← α·A·B + β·C` through faer's single-threaded matrix multiply (our products are
/// small; parallelism comes from running instances side by side).
///
/// # Safety
/// As [`Scalar::gemm_strided`].
#[allow(clippy::too_many_arguments)]
unsafe fn faer_gemm<T: faer_traits::ComplexField + num_traits::Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    beta: T,
    c: *mut T,
    rsc: isize,
    csc: isize,
) {
    use faer::{Accum, MatMut, MatRef, Par};
    let accum = if beta == T::zero() {
        Accum::Replace
    } else {
        if beta != T::one() {
            for i in 0..m as isize {
                for j in 0..n as isize {
                    let v = c.offset(i * rsc + j * csc);
                    // `T` has no `MulAssign` bound here, so no `*=`.
                    #[allow(clippy::assign_op_pattern)]
                    {
                        *v = *v * beta;
                    }
                }
            }
        }
        Accum::Add
    };
    let a = MatRef::from_raw_parts(a, m, k, rsa, csa);
    let b = MatRef::from_raw_parts(b, k, n, rsb, csb);
    let c = MatMut::from_raw_parts_mut(c, m, n, rsc, csc);
    faer::linalg::matmul::matmul(c, accum, a, b, alpha, Par::Seq);
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
        faer_gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
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
        faer_gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
