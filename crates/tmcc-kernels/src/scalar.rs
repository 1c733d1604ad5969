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

    /// The product `g` ([`RawGemm`]).
    ///
    /// # Safety
    /// Every index `i·rs + j·cs` inside the stated shapes must be in bounds of its
    /// allocation, and `C` must not alias `A` or `B`.
    unsafe fn gemm_strided(g: &RawGemm<Self>);
}

/// `C ← α·A·B + β·C` as one product by raw parts: `A` is `m×k`, `B` is `k×n`, `C` is
/// `m×n`, each element addressed by a row and a column stride (so a transpose is a stride
/// swap).
#[derive(Clone, Copy, Debug)]
pub struct RawGemm<T> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub alpha: T,
    pub a: *const T,
    pub rsa: isize,
    pub csa: isize,
    pub b: *const T,
    pub rsb: isize,
    pub csb: isize,
    pub beta: T,
    pub c: *mut T,
    pub rsc: isize,
    pub csc: isize,
}

// SAFETY: a `RawGemm` only names memory; whoever runs it (`Scalar::gemm_strided`, unsafe)
// promises the bounds and that no two products running at once write the same elements
// of `C` (the CPU backend shares one only between the two halves of a product, which
// write disjoint blocks).
unsafe impl<T: Send> Send for RawGemm<T> {}
unsafe impl<T: Sync> Sync for RawGemm<T> {}

/// [`RawGemm`] through faer's single-threaded matrix multiply (our products are small;
/// parallelism comes from running instances, or halves of a product, side by side).
///
/// # Safety
/// As [`Scalar::gemm_strided`].
unsafe fn faer_gemm<T: faer_traits::ComplexField + num_traits::Float>(g: &RawGemm<T>) {
    let RawGemm {
        m,
        k,
        n,
        alpha,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        beta,
        c,
        rsc,
        csc,
    } = *g;
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
    unsafe fn gemm_strided(g: &RawGemm<f32>) {
        faer_gemm(g)
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
    unsafe fn gemm_strided(g: &RawGemm<f64>) {
        faer_gemm(g)
    }
}
