//! Named constructors for the batched products of the fast path: a [`Mat`] carries where
//! a matrix lives and its shape, so a product reads as the maths does,
//! `product(n, emb.t(), w1.t(), a_t)` for `Aᵀ = W_Eᵀ·W1ᵀ`, and the inner dimensions are
//! checked (in debug builds) instead of being passed as positional numbers.

use tmcc_kernels::{Gemm, Operand, SparseSpec, View};

use crate::model::Float;

/// A `rows×cols` matrix operand `op(X)`: `X` lives at `op.view` (one block per instance),
/// stored row-major as `rows×cols`, or as `cols×rows` when `op.trans`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mat {
    pub op: Operand,
    pub rows: usize,
    pub cols: usize,
}

impl Mat {
    /// A `rows×cols` block per instance, packed one after the other.
    pub fn packed(rows: usize, cols: usize) -> Self {
        Self::at(View::packed(rows * cols), rows, cols)
    }

    /// One `rows×cols` matrix shared by every instance.
    pub fn shared(rows: usize, cols: usize) -> Self {
        Self::at(View::new(0, 0), rows, cols)
    }

    /// A `rows×cols` matrix at `view` (e.g. a parameter tensor inside the flat buffers).
    pub fn at(view: View, rows: usize, cols: usize) -> Self {
        Self {
            op: Operand::n(view),
            rows,
            cols,
        }
    }

    /// The transpose (same storage).
    pub fn t(self) -> Self {
        Self {
            op: Operand {
                view: self.op.view,
                trans: !self.op.trans,
            },
            rows: self.cols,
            cols: self.rows,
        }
    }
}

/// `C ← A·B` for each of `instances` instances (`C` untransposed, `a.rows × b.cols`).
/// Scale or accumulate with struct update syntax: `Gemm { beta: one, ..product(..) }`.
pub(super) fn product<T: Float>(instances: usize, a: Mat, b: Mat, c: Mat) -> Gemm<T> {
    debug_assert_eq!(a.cols, b.rows, "inner dimensions of a product");
    debug_assert!(
        !c.op.trans && c.rows == a.rows && c.cols == b.cols,
        "shape of a product's output"
    );
    Gemm {
        batch: instances,
        m: a.rows,
        n: b.cols,
        k: a.cols,
        alpha: T::one(),
        beta: T::zero(),
        a: a.op,
        b: b.op,
        c: c.op.view,
    }
}

/// A sparse gather or scatter between the packed `rows×width` activations of the
/// instances and the rows of `table` (`F×width`, untransposed): gather
/// `Y ← β·Y + x·table`, scatter `table += xᵀ·Y`.
pub(super) fn sparse<T: Float>(rows: usize, table: Mat, beta: T) -> SparseSpec<T> {
    debug_assert!(!table.op.trans, "a sparse table is read by rows");
    SparseSpec {
        width: table.cols,
        y: View::packed(rows * table.cols),
        t: table.op.view,
        t_row_stride: table.cols,
        t_col_stride: 1,
        beta,
    }
}
