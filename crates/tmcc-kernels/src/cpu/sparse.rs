//! Kernels that read a sparse matrix (CSR, `K·B` rows, sorted unique columns per row):
//! the gather `Y[b,:] ← β·Y[b,:] + Σ v·T[f,:]` of a batch `x`, its transpose the scatter
//! `T[f,:] += v·Y[b,:]`, and the loss against sparse labels `y` with its gradient.
//! (A gather or scatter of a dense enough batch goes to [`super::dense_batch`] instead.)
//!
//! All three walk rows in order and add each row's entries in column order (the order the
//! CUDA backend follows too). The loss visits a row in blocks of [`LANES`] columns: the
//! label is 0 except at the row's few stored cells, which are patched into the block
//! before one branch-free pass computes the loss terms (into `LANES` partial sums) and
//! the gradient.

use rayon::prelude::*;

use super::dense_batch::{self, BatchPath};
use super::simd::multiversion;
use super::{for_blocks_mut, parallel};
use crate::bounds::{check_csr_lengths, check_loss, check_sparse};
use crate::{Csr, KernelError, LossKind, LossSpec, Result, Scalar, SparseSpec};

/// Partial sums per row of the loss (one 512-bit vector of `f32`).
const LANES: usize = 16;

/// Rows per rayon task of the parallel gathers and losses.
pub(super) const ROWS_PER_TASK: usize = 256;

fn check_csr<T: Scalar>(x: &Csr<Vec<u32>, Vec<T>>) -> Result<usize> {
    let rows = check_csr_lengths(x)?;
    if x.row_ptr[rows] as usize != x.nnz {
        return Err(KernelError::Invalid(format!(
            "CSR batch inconsistent: row_ptr ends at {}, nnz {}",
            x.row_ptr[rows], x.nnz
        )));
    }
    // Offsets must not decrease and columns must lie inside the batch (a bad batch
    // would otherwise index outside the table).
    // (Folds rather than `any`: branch-free, they vectorise; a dense batch has ~K·B·F cells.)
    let decreasing = x.row_ptr.windows(2).fold(false, |d, w| d | (w[0] > w[1]));
    let max_col = x.col.iter().fold(0u32, |m, &c| m.max(c));
    if decreasing || (x.nnz > 0 && max_col as usize >= x.cols) {
        return Err(KernelError::Invalid(
            "CSR batch has decreasing offsets or a column ≥ cols".into(),
        ));
    }
    Ok(rows)
}

/// `y ← v·t`, in blocks of [`LANES`] (a short row would otherwise run a narrow vector loop
/// with a scalar tail; fixed blocks compile to full-width vectors).
#[inline(always)]
fn scale_into<T: Scalar>(y: &mut [T], v: T, t: &[T]) {
    let t = &t[..y.len()];
    let mut yc = y.chunks_exact_mut(LANES);
    let mut tc = t.chunks_exact(LANES);
    for (y, t) in (&mut yc).zip(&mut tc) {
        let y: &mut [T; LANES] = y.try_into().expect("LANES");
        let t: &[T; LANES] = t.try_into().expect("LANES");
        for l in 0..LANES {
            y[l] = v * t[l];
        }
    }
    for (y, &t) in yc.into_remainder().iter_mut().zip(tc.remainder()) {
        *y = v * t;
    }
}

/// `y ← y + v·t`, in blocks of [`LANES`] as [`scale_into`].
#[inline(always)]
fn axpy_into<T: Scalar>(y: &mut [T], v: T, t: &[T]) {
    let t = &t[..y.len()];
    let mut yc = y.chunks_exact_mut(LANES);
    let mut tc = t.chunks_exact(LANES);
    for (y, t) in (&mut yc).zip(&mut tc) {
        let y: &mut [T; LANES] = y.try_into().expect("LANES");
        let t: &[T; LANES] = t.try_into().expect("LANES");
        for l in 0..LANES {
            y[l] += v * t[l];
        }
    }
    for (y, &t) in yc.into_remainder().iter_mut().zip(tc.remainder()) {
        *y += v * t;
    }
}

/// The `(column, value)` pairs of CSR row `row`.
#[inline(always)]
fn row_entries<'a, T: Scalar>(
    x: &'a Csr<Vec<u32>, Vec<T>>,
    row: usize,
) -> impl Iterator<Item = (usize, T)> + 'a {
    let (lo, hi) = (x.row_ptr[row] as usize, x.row_ptr[row + 1] as usize);
    x.col[lo..hi]
        .iter()
        .zip(&x.val[lo..hi])
        .map(|(&f, &v)| (f as usize, v))
}

multiversion! {
    /// Rows `first..` of the gather into `y` (whole rows of `s.width`).
    fn gather_rows<T: Scalar>(
        s: &SparseSpec<T>,
        x: &Csr<Vec<u32>, Vec<T>>,
        table: &[T],
        y: &mut [T],
        first: usize,
    ) {
        let (bsz, w) = (x.rows_per_instance, s.width);
        let n_rows = y.len() / w;
        let mut row = first;
        // Walk the rows instance by instance (no division per row).
        while row < first + n_rows {
            let k = row / bsz;
            let end = ((k + 1) * bsz).min(first + n_rows);
            let base = s.t.off + k * s.t.stride;
            for row in row..end {
                let i = row - first;
                let yr = &mut y[i * w..(i + 1) * w];
                let (lo, hi) = (x.row_ptr[row] as usize, x.row_ptr[row + 1] as usize);
                let mut entries = x.col[lo..hi].iter().zip(&x.val[lo..hi]);
                let cs = s.t_col_stride;
                let strided = |t0: usize| table[t0..t0 + (w - 1) * cs + 1].iter().step_by(cs);
                if s.beta == T::zero() {
                    // Y ← v·T[f,:] for the first entry (0 + v·t rounds the same), or 0.
                    match entries.next() {
                        Some((&f, &v)) => {
                            let t0 = base + f as usize * s.t_row_stride;
                            if cs == 1 {
                                let tr = &table[t0..t0 + w];
                                scale_into(yr, v, tr);
                            } else {
                                yr.iter_mut()
                                    .zip(strided(t0))
                                    .for_each(|(y, &t)| *y = v * t);
                            }
                        }
                        None => yr.iter_mut().for_each(|v| *v = T::zero()),
                    }
                } else if s.beta != T::one() {
                    yr.iter_mut().for_each(|v| *v = *v * s.beta);
                }
                for (&f, &v) in entries {
                    let t0 = base + f as usize * s.t_row_stride;
                    if cs == 1 {
                        let tr = &table[t0..t0 + w];
                        axpy_into(yr, v, tr);
                    } else {
                        yr.iter_mut()
                            .zip(strided(t0))
                            .for_each(|(y, &t)| *y += v * t);
                    }
                }
            }
            row = end;
        }
    }
}

/// The gather, by `path` (the backend passes [`BatchPath::for_batch`]).
pub fn gather<T: Scalar>(
    path: BatchPath,
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    table: &[T],
    y: &mut [T],
) -> Result<()> {
    let rows = check_csr(x)?;
    let w = s.width;
    check_sparse(false, s, x, rows, table.len(), y.len())?;
    if w == 0 || rows == 0 {
        return Ok(());
    }
    if path == BatchPath::Dense {
        dense_batch::gather(s, x, table, y, rows);
        return Ok(());
    }
    let y = &mut y[..rows * w];
    if parallel(rows * w + x.nnz * w) {
        y.par_chunks_mut(ROWS_PER_TASK * w)
            .enumerate()
            .for_each(|(t, yc)| gather_rows(s, x, table, yc, t * ROWS_PER_TASK));
    } else {
        gather_rows(s, x, table, y, 0);
    }
    Ok(())
}

multiversion! {
    /// Instance `k`'s rows of the scatter into its table block `tb`.
    fn scatter_instance<T: Scalar>(
        s: &SparseSpec<T>,
        x: &Csr<Vec<u32>, Vec<T>>,
        y: &[T],
        tb: &mut [T],
        k: usize,
    ) {
        let (bsz, w) = (x.rows_per_instance, s.width);
        for b in 0..bsz {
            let row = k * bsz + b;
            let yr = &y[row * w..(row + 1) * w];
            for (f, v) in row_entries(x, row) {
                let t0 = f * s.t_row_stride;
                if s.t_col_stride == 1 {
                    let tr = &mut tb[t0..t0 + w];
                    axpy_into(tr, v, yr);
                } else {
                    let tr = &mut tb[t0..t0 + (w - 1) * s.t_col_stride + 1];
                    tr.iter_mut()
                        .step_by(s.t_col_stride)
                        .zip(yr)
                        .for_each(|(t, &y)| *t += v * y);
                }
            }
        }
    }
}

/// The scatter, by `path` (the backend passes [`BatchPath::for_batch`]).
pub fn scatter<T: Scalar>(
    path: BatchPath,
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    y: &[T],
    table: &mut [T],
) -> Result<()> {
    let rows = check_csr(x)?;
    let w = s.width;
    let extent = check_sparse(true, s, x, rows, table.len(), y.len())?;
    if w == 0 || rows == 0 {
        return Ok(());
    }
    if path == BatchPath::Dense {
        dense_batch::scatter(s, x, y, table, extent);
        return Ok(());
    }
    let par = x.instances > 1 && parallel(x.nnz * w + rows);
    for_blocks_mut(table, s.t, x.instances, extent, par, |k, tb| {
        scatter_instance(s, x, y, tb, k)
    });
    Ok(())
}

pub fn loss<T: Scalar>(
    s: &LossSpec<T>,
    out: &[T],
    y: &Csr<Vec<u32>, Vec<T>>,
    importance: &[T],
    row_loss: &mut [T],
    dout: Option<&mut [T]>,
) -> Result<()> {
    let rows = check_csr(y)?;
    let f = y.cols;
    check_loss(
        rows,
        f,
        out.len(),
        importance.len(),
        row_loss.len(),
        dout.as_ref().map(|d| d.len()),
    )?;
    if rows == 0 {
        return Ok(());
    }
    let run = |first: usize, rl: &mut [T], d: Option<&mut [T]>| match (s.kind, d) {
        (LossKind::L2, Some(d)) => loss_rows_l2_grad(s, out, y, importance, rl, d, first),
        (LossKind::L1, Some(d)) => loss_rows_l1_grad(s, out, y, importance, rl, d, first),
        (LossKind::L2, None) => loss_rows_l2(s, out, y, importance, rl, first),
        (LossKind::L1, None) => loss_rows_l1(s, out, y, importance, rl, first),
    };
    if f == 0 {
        row_loss.iter_mut().for_each(|l| *l = T::zero());
        return Ok(());
    }
    if parallel(rows * f) {
        match dout {
            Some(d) => row_loss
                .par_chunks_mut(ROWS_PER_TASK)
                .zip(d.par_chunks_mut(ROWS_PER_TASK * f))
                .enumerate()
                .for_each(|(t, (rl, d))| run(t * ROWS_PER_TASK, rl, Some(d))),
            None => row_loss
                .par_chunks_mut(ROWS_PER_TASK)
                .enumerate()
                .for_each(|(t, rl)| run(t * ROWS_PER_TASK, rl, None)),
        }
    } else {
        run(0, row_loss, dout);
    }
    Ok(())
}

/// An element loss `ℓ(e)` and its derivative `ℓ'(e)`.
trait ElemLoss {
    fn loss<T: Scalar>(e: T) -> T;
    fn grad<T: Scalar>(e: T) -> T;
}

struct L2;
impl ElemLoss for L2 {
    #[inline(always)]
    fn loss<T: Scalar>(e: T) -> T {
        e * e
    }
    #[inline(always)]
    fn grad<T: Scalar>(e: T) -> T {
        e + e
    }
}

struct L1;
impl ElemLoss for L1 {
    #[inline(always)]
    fn loss<T: Scalar>(e: T) -> T {
        e.abs()
    }
    #[inline(always)]
    fn grad<T: Scalar>(e: T) -> T {
        let one = T::one();
        if e > T::zero() {
            one
        } else if e < T::zero() {
            -one
        } else {
            T::zero()
        }
    }
}

/// One full block of [`LANES`] columns from `j0` of a loss row that holds the active
/// cells `cols[*next..]` below `j0 + LANES`: `e = out − y` with those labels blended in
/// (lane selects, so `e` stays in a register), the weighted loss terms added to `lanes`
/// and, with `GRAD`, `∂/∂out` written to `d` (the block's columns).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn loss_block<T: Scalar, L: ElemLoss, const GRAD: bool>(
    o: &[T],
    j0: usize,
    w: &[T; LANES],
    cols: &[u32],
    vals: &[T],
    next: &mut usize,
    s: &LossSpec<T>,
    lanes: &mut [T; LANES],
    d: &mut [T],
) {
    let mut e: [T; LANES] = o[j0..j0 + LANES].try_into().expect("LANES columns");
    while *next < cols.len() && (cols[*next] as usize) < j0 + LANES {
        let (c, v) = (cols[*next] as usize, vals[*next]);
        let label_err = o[c] - v;
        let rel = c - j0;
        for (l, e) in e.iter_mut().enumerate() {
            *e = if l == rel { label_err } else { *e };
        }
        *next += 1;
    }
    for l in 0..LANES {
        lanes[l] += w[l] * L::loss(e[l]);
    }
    if GRAD {
        let d: &mut [T; LANES] = d.try_into().expect("LANES columns");
        for l in 0..LANES {
            d[l] = s.scale * w[l] * L::grad(e[l]);
        }
    }
}

/// Rows `first..first + row_loss.len()` of the loss, and `∂/∂out` into `dout` (the same
/// rows) when `GRAD`. `e = out − y` is exactly `out` away from the labels' stored cells.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn loss_rows<T: Scalar, L: ElemLoss, const GRAD: bool>(
    s: &LossSpec<T>,
    out: &[T],
    y: &Csr<Vec<u32>, Vec<T>>,
    imp: &[T],
    row_loss: &mut [T],
    dout: &mut [T],
    first: usize,
) {
    let f = y.cols;
    let full = f / LANES * LANES;
    for (i, rl) in row_loss.iter_mut().enumerate() {
        let row = first + i;
        let o = &out[row * f..(row + 1) * f];
        let (lo, hi) = (y.row_ptr[row] as usize, y.row_ptr[row + 1] as usize);
        let (cols, vals) = (&y.col[lo..hi], &y.val[lo..hi]);
        let mut next = 0;
        let mut lanes = [T::zero(); LANES];
        let d_row: &mut [T] = if GRAD {
            &mut dout[i * f..(i + 1) * f]
        } else {
            &mut []
        };
        for j0 in (0..full).step_by(LANES) {
            let w: &[T; LANES] = imp[j0..j0 + LANES].try_into().expect("LANES columns");
            if next < cols.len() && (cols[next] as usize) < j0 + LANES {
                let d: &mut [T] = if GRAD {
                    &mut d_row[j0..j0 + LANES]
                } else {
                    &mut []
                };
                loss_block::<T, L, GRAD>(o, j0, w, cols, vals, &mut next, s, &mut lanes, d);
            } else {
                // No active cell: the label is 0 and e = out, read straight from `out`
                // (a copy through a stack block would stall store forwarding).
                let ob: &[T; LANES] = o[j0..j0 + LANES].try_into().expect("LANES columns");
                for l in 0..LANES {
                    lanes[l] += w[l] * L::loss(ob[l]);
                }
                if GRAD {
                    let d = &mut d_row[j0..j0 + LANES];
                    for l in 0..LANES {
                        d[l] = s.scale * w[l] * L::grad(ob[l]);
                    }
                }
            }
        }
        // The last `f − full` (< LANES) columns, one at a time.
        for j in full..f {
            let mut e = o[j];
            if next < cols.len() && cols[next] as usize == j {
                let v = vals[next];
                e = o[j] - v;
                next += 1;
            }
            lanes[j - full] += imp[j] * L::loss(e);
            if GRAD {
                d_row[j] = s.scale * imp[j] * L::grad(e);
            }
        }
        // Pairwise sum of the lanes.
        let mut n = LANES;
        while n > 1 {
            n /= 2;
            for l in 0..n {
                lanes[l] += lanes[l + n];
            }
        }
        *rl = s.scale * lanes[0];
    }
}

/// The loss rows with the gradient: `dout` doubles as the row's `e = out − y` (a copy of
/// `out` with the few active cells patched), then one branch-free pass turns it into the
/// loss terms (into [`LANES`] partial sums) and `∂/∂out`, in place.
#[inline(always)]
fn loss_rows_grad<T: Scalar, L: ElemLoss>(
    s: &LossSpec<T>,
    out: &[T],
    y: &Csr<Vec<u32>, Vec<T>>,
    imp: &[T],
    row_loss: &mut [T],
    dout: &mut [T],
    first: usize,
) {
    let f = y.cols;
    let scale = s.scale;
    let (imp_full, imp_tail) = imp.split_at(f / LANES * LANES);
    for (i, (rl, d)) in row_loss
        .iter_mut()
        .zip(dout.chunks_exact_mut(f))
        .enumerate()
    {
        let row = first + i;
        d.copy_from_slice(&out[row * f..(row + 1) * f]);
        let (lo, hi) = (y.row_ptr[row] as usize, y.row_ptr[row + 1] as usize);
        for (&c, &v) in y.col[lo..hi].iter().zip(&y.val[lo..hi]) {
            let c = c as usize;
            d[c] = d[c] - v;
        }
        let mut lanes = [T::zero(); LANES];
        let (d_full, d_tail) = d.split_at_mut(imp_full.len());
        for (dc, wc) in d_full
            .chunks_exact_mut(LANES)
            .zip(imp_full.chunks_exact(LANES))
        {
            for l in 0..LANES {
                let e = dc[l];
                lanes[l] += wc[l] * L::loss(e);
                dc[l] = scale * wc[l] * L::grad(e);
            }
        }
        for (l, (dv, &w)) in d_tail.iter_mut().zip(imp_tail).enumerate() {
            let e = *dv;
            lanes[l] += w * L::loss(e);
            *dv = scale * w * L::grad(e);
        }
        let mut n = LANES;
        while n > 1 {
            n /= 2;
            for l in 0..n {
                lanes[l] += lanes[l + n];
            }
        }
        *rl = scale * lanes[0];
    }
}

multiversion! {
    fn loss_rows_l2_grad<T: Scalar>(s: &LossSpec<T>, out: &[T], y: &Csr<Vec<u32>, Vec<T>>,
        imp: &[T], rl: &mut [T], d: &mut [T], first: usize) {
        loss_rows_grad::<T, L2>(s, out, y, imp, rl, d, first)
    }
}
multiversion! {
    fn loss_rows_l1_grad<T: Scalar>(s: &LossSpec<T>, out: &[T], y: &Csr<Vec<u32>, Vec<T>>,
        imp: &[T], rl: &mut [T], d: &mut [T], first: usize) {
        loss_rows_grad::<T, L1>(s, out, y, imp, rl, d, first)
    }
}
multiversion! {
    fn loss_rows_l2<T: Scalar>(s: &LossSpec<T>, out: &[T], y: &Csr<Vec<u32>, Vec<T>>,
        imp: &[T], rl: &mut [T], first: usize) {
        loss_rows::<T, L2, false>(s, out, y, imp, rl, &mut [], first)
    }
}
multiversion! {
    fn loss_rows_l1<T: Scalar>(s: &LossSpec<T>, out: &[T], y: &Csr<Vec<u32>, Vec<T>>,
        imp: &[T], rl: &mut [T], first: usize) {
        loss_rows::<T, L1, false>(s, out, y, imp, rl, &mut [], first)
    }
}
