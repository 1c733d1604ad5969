//! The backend interface: each operation acts on all `K` instances at once.
//!
//! | op | per instance `k` |
//! |---|---|
//! | `gemm` | `C ← α·op(A)·op(B) + β·C`, `op(A)`: `m×n_k`, `op(B)`: `n_k×n`, `C`: `m×n` |
//! | `sparse_gather` | `Y[b,:] ← β·Y[b,:] + Σ_{(f,v) ∈ x_b} v·T[f,:]`, `Y`: `B×N`, `T`: `F×N` |
//! | `sparse_scatter` | `T[f,:] += Σ_b v_{bf}·Y[b,:]` (the transpose of the gather) |
//! | `add_bias` | `Y[b,:] += c` for every row `b` |
//! | `col_sum` | `c ← Σ_b Y[b,:]` |
//! | `relu` / `relu_mask` | `h = max(pre, 0)` / `g ← g ⊙ [pre > 0]` (whole buffers) |
//! | `axpy` | `y ← y + α·x` (whole buffers) |
//! | `loss` | per-sample loss of `out` against sparse labels `y`, and `∂L/∂out` |
//! | `adam` | one Adam / AdamW update of every element |
//!
//! A sparse batch `x` is a CSR matrix of `K·B` rows (instance-major) over `F` columns; so
//! are the labels `y` of the loss. The kernels know no task: the model crate computes the
//! labels (`tmcc_model::task`) and hands them over as such a matrix.

use crate::{Result, Scalar};

/// Where instance `k`'s part of an operand lives: elements `off + k·stride ..`.
/// `stride = 0` shares one operand between all instances (inputs only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub off: usize,
    pub stride: usize,
}

impl View {
    pub const fn new(off: usize, stride: usize) -> Self {
        Self { off, stride }
    }
    /// Consecutive blocks of `len` elements, one per instance.
    pub const fn packed(len: usize) -> Self {
        Self {
            off: 0,
            stride: len,
        }
    }
}

/// A matrix operand of [`Gemm`]: stored row-major as `rows×cols` of `op(·)` when
/// `trans = false`, or as its transpose when `trans = true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    pub view: View,
    pub trans: bool,
}

impl Operand {
    pub const fn n(view: View) -> Self {
        Self { view, trans: false }
    }
    pub const fn t(view: View) -> Self {
        Self { view, trans: true }
    }
}

/// `C ← α·op(A)·op(B) + β·C` for each of `batch` instances; `op(A)` is `m×k`, `op(B)` `k×n`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm<T> {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: T,
    pub beta: T,
    pub a: Operand,
    pub b: Operand,
    pub c: View,
}

/// A sparse batch on the device: `rows = K·B` rows, instance-major, CSR.
pub struct Csr<I, V> {
    pub instances: usize,
    pub rows_per_instance: usize,
    pub cols: usize,
    /// `rows + 1` offsets into `col`/`val`.
    pub row_ptr: I,
    pub col: I,
    pub val: V,
    pub nnz: usize,
}

/// Shapes of a sparse gather or scatter: per instance, `Y` is `B×width` at `y`, and the
/// table `T` has `F` rows of `width` entries, element `(f, j)` at
/// `t.off + k·t.stride + f·t_row_stride + j·t_col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct SparseSpec<T> {
    pub width: usize,
    pub y: View,
    pub t: View,
    pub t_row_stride: usize,
    pub t_col_stride: usize,
    /// Gather only: `Y ← beta·Y + …`.
    pub beta: T,
}

/// Loss function of the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// `importance · (out − y)²`
    L2,
    /// `importance · |out − y|` (subgradient 0 at 0)
    L1,
}

/// `loss_b = scale · Σ_f imp_f · ℓ(out_bf − y_bf)` with sparse labels `y` (0 away from
/// their stored cells), and `∂(Σ_b loss_b)/∂out` (the batch mean is taken by choosing
/// `scale = 1/(B·F)`).
#[derive(Clone, Copy, Debug)]
pub struct LossSpec<T> {
    pub kind: LossKind,
    pub scale: T,
}

/// One Adam step with bias correction, `lr` already scheduled; AdamW when
/// `weight_decay > 0` (decoupled: `θ ← θ − lr·wd·θ` before the Adam update).
#[derive(Clone, Copy, Debug)]
pub struct AdamSpec<T> {
    pub lr: T,
    pub beta1: T,
    pub beta2: T,
    pub eps: T,
    pub weight_decay: T,
    /// `1 − β1^t` and `1 − β2^t` for the step `t ≥ 1` being taken.
    pub bias_correction1: T,
    pub bias_correction2: T,
}

/// The operations a training step needs, batched over instances.
pub trait Backend<T: Scalar>: Send + Sync {
    /// A flat array of `T` owned by the backend.
    type Buf: Send + Sync;
    /// A flat array of `u32` owned by the backend.
    type Idx: Send + Sync;

    fn name(&self) -> &'static str;
    /// Whether independent instances should run side by side on host threads, each in its
    /// own buffers (the CPU), rather than all in one launch per operation (a GPU).
    fn parallel_instances(&self) -> bool;

    fn zeros(&self, len: usize) -> Result<Self::Buf>;
    fn upload(&self, host: &[T]) -> Result<Self::Buf>;
    fn upload_idx(&self, host: &[u32]) -> Result<Self::Idx>;
    /// Replace the contents of `dst` with `host` (the length may change).
    fn write(&self, dst: &mut Self::Buf, host: &[T]) -> Result<()>;
    /// Replace the contents of `dst` with `host` (the length may change).
    fn write_idx(&self, dst: &mut Self::Idx, host: &[u32]) -> Result<()>;
    fn read(&self, src: &Self::Buf) -> Result<Vec<T>>;
    fn len(&self, buf: &Self::Buf) -> usize;
    fn fill(&self, buf: &mut Self::Buf, value: T) -> Result<()>;

    fn gemm(&self, g: &Gemm<T>, a: &Self::Buf, b: &Self::Buf, c: &mut Self::Buf) -> Result<()>;
    fn sparse_gather(
        &self,
        s: &SparseSpec<T>,
        x: &Csr<Self::Idx, Self::Buf>,
        table: &Self::Buf,
        y: &mut Self::Buf,
    ) -> Result<()>;
    fn sparse_scatter(
        &self,
        s: &SparseSpec<T>,
        x: &Csr<Self::Idx, Self::Buf>,
        y: &Self::Buf,
        table: &mut Self::Buf,
    ) -> Result<()>;
    /// `Y[k,b,:] += c[k,:]`, `Y` packed `K×B×width`.
    fn add_bias(
        &self,
        rows: usize,
        width: usize,
        bias: &Self::Buf,
        bias_view: View,
        y: &mut Self::Buf,
    ) -> Result<()>;
    /// `c[k,:] ← Σ_b Y[k,b,:]`, `Y` packed `K×B×width`.
    fn col_sum(
        &self,
        rows: usize,
        width: usize,
        y: &Self::Buf,
        out: &mut Self::Buf,
        out_view: View,
    ) -> Result<()>;
    fn relu(&self, pre: &Self::Buf, h: &mut Self::Buf) -> Result<()>;
    fn relu_mask(&self, pre: &Self::Buf, grad: &mut Self::Buf) -> Result<()>;
    fn axpy(&self, alpha: T, x: &Self::Buf, y: &mut Self::Buf) -> Result<()>;
    /// Per-sample losses of `out` (`K×B×F`) against the labels `y` (CSR, `K·B` rows of
    /// `F`) into `row_loss` (`K·B`) and, if given, `∂/∂out` into `dout` (`K×B×F`,
    /// overwritten). `importance` has `F` entries shared by all instances.
    fn loss(
        &self,
        spec: &LossSpec<T>,
        out: &Self::Buf,
        y: &Csr<Self::Idx, Self::Buf>,
        importance: &Self::Buf,
        row_loss: &mut Self::Buf,
        dout: Option<&mut Self::Buf>,
    ) -> Result<()>;
    fn adam(
        &self,
        spec: &AdamSpec<T>,
        params: &mut Self::Buf,
        grads: &Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
    ) -> Result<()>;
}
