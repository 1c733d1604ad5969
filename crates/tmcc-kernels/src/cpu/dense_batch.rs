//! The gather and scatter of a batch that is not sparse, as dense products.
//!
//! At high p most cells of `x` are active and the row walk of [`super::sparse`] costs
//! one strided `axpy` per cell; the same sums as matrix products run at the machine's
//! multiply rate instead. Per instance `k`, with `X_k` the `B×F` dense batch:
//!
//! - gather: `Y_k ← β·Y_k + X_k·T_k` (`Y_k`: `B×w`, `T_k`: `F×w` at its strides);
//! - scatter: `T_k ← T_k + X_kᵀ·Y_k`.
//!
//! `X` is written out a segment of rows at a time into a stack buffer of [`SCRATCH`]
//! elements (at most `SCRATCH / F` rows, never across an instance), and each segment is
//! one product. The segments depend only on the shapes (the gather's tasks are the
//! sparse gather's [`ROWS_PER_TASK`] rows), so results never depend on the thread count.
//! The sums run in the product's order, not column order: results agree with the row
//! walk to rounding (`tests/backend_parity.rs` checks both paths against the naive backend).
//!
//! [`BatchPath::for_batch`] picks the path: dense when at least [`DENSE_MIN_DENSITY`] of
//! the cells are active (measured on this project's machines: `cargo bench -p
//! tmcc-benches --bench kernels -- density`) and `F ≤ SCRATCH`.

use rayon::prelude::*;

use super::sparse::ROWS_PER_TASK;
use super::{for_blocks_mut, parallel};
use crate::{Csr, RawGemm, Scalar, SparseSpec};

/// Elements of the stack buffer a segment of dense rows is written into.
pub const SCRATCH: usize = 8192;

/// The share of active cells from which the dense products are faster than the row walk
/// (AMD EPYC, 2 threads, `B = 2048`, `F = 100`: at 0.15 the walk still wins three of the
/// four gathers and scatters of widths 50 and 100, at 0.3 the products win all four, by
/// 1.3–1.7×; at density 1 by 3.4–4×).
pub const DENSE_MIN_DENSITY: f64 = 0.2;

/// How a gather or scatter reads its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchPath {
    /// Walk each row's stored cells ([`super::sparse`]).
    Walk,
    /// Dense products over the written-out batch (this module).
    Dense,
}

impl BatchPath {
    /// The faster path for `x` (see the module header).
    pub fn for_batch<T>(x: &Csr<Vec<u32>, Vec<T>>) -> Self {
        let cells = x.instances * x.rows_per_instance * x.cols;
        if x.cols <= SCRATCH && x.nnz as f64 >= DENSE_MIN_DENSITY * cells as f64 {
            Self::Dense
        } else {
            Self::Walk
        }
    }
}

/// Rows `r0..r1` of `x` as a dense row-major block in `buf` (`(r1 − r0)·F` elements).
fn write_rows<T: Scalar>(x: &Csr<Vec<u32>, Vec<T>>, r0: usize, r1: usize, buf: &mut [T]) {
    let f = x.cols;
    let block = &mut buf[..(r1 - r0) * f];
    block.iter_mut().for_each(|v| *v = T::zero());
    for (i, row) in (r0..r1).enumerate() {
        let (lo, hi) = (x.row_ptr[row] as usize, x.row_ptr[row + 1] as usize);
        for (&c, &v) in x.col[lo..hi].iter().zip(&x.val[lo..hi]) {
            block[i * f + c as usize] = v;
        }
    }
}

/// Rows per dense segment for `F` columns.
fn segment_rows(f: usize) -> usize {
    (SCRATCH / f.max(1)).max(1)
}

/// Rows `first..first + y.len()/w` of the gather into `y`, segment by segment.
fn gather_task<T: Scalar>(
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    table: &[T],
    y: &mut [T],
    first: usize,
) {
    let (bsz, f, w) = (x.rows_per_instance, x.cols, s.width);
    let end = first + y.len() / w;
    let seg = segment_rows(f);
    let mut buf = [T::zero(); SCRATCH];
    let mut r0 = first;
    while r0 < end {
        let k = r0 / bsz;
        let r1 = (r0 + seg).min((k + 1) * bsz).min(end);
        write_rows(x, r0, r1, &mut buf);
        let yc = &mut y[(r0 - first) * w..(r1 - first) * w];
        let t = &table[s.t.off + k * s.t.stride..];
        let g = RawGemm {
            m: r1 - r0,
            k: f,
            n: w,
            alpha: T::one(),
            a: buf.as_ptr(),
            rsa: f as isize,
            csa: 1,
            b: t.as_ptr(),
            rsb: s.t_row_stride as isize,
            csb: s.t_col_stride as isize,
            beta: s.beta,
            c: yc.as_mut_ptr(),
            rsc: w as isize,
            csc: 1,
        };
        // SAFETY: check_sparse proved the table's `F×w` block of instance k (at its
        // strides) and the packed rows of `y` in bounds; `buf` holds the segment's
        // `(r1 − r0)×F` rows; `yc` is a distinct &mut borrow.
        unsafe { T::gemm_strided(&g) }
        r0 = r1;
    }
}

/// The gather of the module header; `rows = K·B`, shapes already checked.
pub(super) fn gather<T: Scalar>(
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    table: &[T],
    y: &mut [T],
    rows: usize,
) {
    let w = s.width;
    let y = &mut y[..rows * w];
    let task = |(t, yc): (usize, &mut [T])| gather_task(s, x, table, yc, t * ROWS_PER_TASK);
    if parallel(rows * x.cols * w) {
        y.par_chunks_mut(ROWS_PER_TASK * w)
            .enumerate()
            .for_each(task);
    } else {
        y.chunks_mut(ROWS_PER_TASK * w).enumerate().for_each(task);
    }
}

/// Instance `k`'s part of the scatter into its table block `tb`.
fn scatter_instance<T: Scalar>(
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    y: &[T],
    tb: &mut [T],
    k: usize,
) {
    let (bsz, f, w) = (x.rows_per_instance, x.cols, s.width);
    let seg = segment_rows(f);
    let mut buf = [T::zero(); SCRATCH];
    for r0 in (k * bsz..(k + 1) * bsz).step_by(seg) {
        let r1 = (r0 + seg).min((k + 1) * bsz);
        write_rows(x, r0, r1, &mut buf);
        let g = RawGemm {
            m: f,
            k: r1 - r0,
            n: w,
            alpha: T::one(),
            // Xᵀ: element (c, i) of the segment at i·F + c.
            a: buf.as_ptr(),
            rsa: 1,
            csa: f as isize,
            b: y[r0 * w..].as_ptr(),
            rsb: w as isize,
            csb: 1,
            beta: T::one(),
            c: tb.as_mut_ptr(),
            rsc: s.t_row_stride as isize,
            csc: s.t_col_stride as isize,
        };
        // SAFETY: check_sparse proved `tb` holds the `F×w` table at its strides and `y`
        // the packed `K·B×w` rows; `buf` holds the segment; `tb` is a distinct &mut.
        unsafe { T::gemm_strided(&g) }
    }
}

/// The scatter of the module header; `extent` is one instance's table block (checked).
pub(super) fn scatter<T: Scalar>(
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    y: &[T],
    table: &mut [T],
    extent: usize,
) {
    let rows = x.instances * x.rows_per_instance;
    let par = x.instances > 1 && parallel(rows * x.cols * s.width);
    for_blocks_mut(table, s.t, x.instances, extent, par, |k, tb| {
        scatter_instance(s, x, y, tb, k)
    });
}
