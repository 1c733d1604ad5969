//! Kernels that read the sparse batch `x` (CSR, `K·B` rows, sorted unique columns per
//! row): the gather `Y[b,:] ← β·Y[b,:] + Σ v·T[f,:]`, its transpose the scatter
//! `T[f,:] += v·Y[b,:]`, and the loss against `y = ReLU(x) + r·x` with its gradient.

use rayon::prelude::*;

use super::{check_view, split_mut};
use crate::{Csr, KernelError, LossKind, LossSpec, Result, Scalar, SparseSpec};

fn table_extent<T>(s: &SparseSpec<T>, cols: usize) -> usize {
    if cols == 0 || s.width == 0 {
        0
    } else {
        (cols - 1) * s.t_row_stride + (s.width - 1) * s.t_col_stride + 1
    }
}

fn check_csr<T: Scalar>(x: &Csr<Vec<u32>, Vec<T>>) -> Result<usize> {
    let rows = x.instances * x.rows_per_instance;
    if x.row_ptr.len() != rows + 1
        || x.col.len() != x.nnz
        || x.val.len() != x.nnz
        || x.row_ptr[rows] as usize != x.nnz
    {
        return Err(KernelError::Invalid(format!(
            "CSR batch inconsistent: {rows} rows, row_ptr {}, col {}, val {}, nnz {}",
            x.row_ptr.len(),
            x.col.len(),
            x.val.len(),
            x.nnz
        )));
    }
    Ok(rows)
}

/// The `(column, value)` pairs of CSR row `row`.
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

pub fn gather<T: Scalar>(
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    table: &[T],
    y: &mut [T],
) -> Result<()> {
    let rows = check_csr(x)?;
    let (bsz, w) = (x.rows_per_instance, s.width);
    check_view(
        "gather.table",
        table.len(),
        s.t,
        x.instances,
        table_extent(s, x.cols),
    )?;
    if s.y.off != 0 || s.y.stride != bsz * w || y.len() < rows * w {
        return Err(KernelError::Invalid(
            "gather output must be packed K×B×width".into(),
        ));
    }
    if w == 0 {
        return Ok(());
    }
    y[..rows * w]
        .par_chunks_mut(w)
        .with_min_len(128)
        .enumerate()
        .for_each(|(row, yr)| {
            if s.beta == T::zero() {
                yr.iter_mut().for_each(|v| *v = T::zero());
            } else if s.beta != T::one() {
                yr.iter_mut().for_each(|v| *v = *v * s.beta);
            }
            let base = s.t.off + (row / bsz) * s.t.stride;
            for (f, v) in row_entries(x, row) {
                let t0 = base + f * s.t_row_stride;
                if s.t_col_stride == 1 {
                    let tr = &table[t0..t0 + w];
                    yr.iter_mut().zip(tr).for_each(|(y, &t)| *y += v * t);
                } else {
                    for (j, y) in yr.iter_mut().enumerate() {
                        *y += v * table[t0 + j * s.t_col_stride];
                    }
                }
            }
        });
    Ok(())
}

pub fn scatter<T: Scalar>(
    s: &SparseSpec<T>,
    x: &Csr<Vec<u32>, Vec<T>>,
    y: &[T],
    table: &mut [T],
) -> Result<()> {
    check_csr(x)?;
    let (bsz, w) = (x.rows_per_instance, s.width);
    if s.y.off != 0 || s.y.stride != bsz * w || y.len() < x.instances * bsz * w {
        return Err(KernelError::Invalid(
            "scatter input must be packed K×B×width".into(),
        ));
    }
    let blocks = split_mut(
        "scatter.table",
        table,
        s.t,
        x.instances,
        table_extent(s, x.cols),
    )?;
    blocks.into_par_iter().enumerate().for_each(|(k, tb)| {
        for b in 0..bsz {
            let row = k * bsz + b;
            let yr = &y[row * w..(row + 1) * w];
            for (f, v) in row_entries(x, row) {
                let t0 = f * s.t_row_stride;
                if s.t_col_stride == 1 {
                    let tr = &mut tb[t0..t0 + w];
                    tr.iter_mut().zip(yr).for_each(|(t, &y)| *t += v * y);
                } else {
                    for (j, &yv) in yr.iter().enumerate() {
                        tb[t0 + j * s.t_col_stride] += v * yv;
                    }
                }
            }
        }
    });
    Ok(())
}

pub fn loss<T: Scalar>(
    s: &LossSpec<T>,
    out: &[T],
    x: &Csr<Vec<u32>, Vec<T>>,
    importance: &[T],
    row_loss: &mut [T],
    dout: Option<&mut Vec<T>>,
) -> Result<()> {
    let rows = check_csr(x)?;
    let f = x.cols;
    if out.len() != rows * f || row_loss.len() != rows || importance.len() != f {
        return Err(KernelError::Invalid(format!(
            "loss: out {} (want {}), row_loss {} (want {rows}), importance {} (want {f})",
            out.len(),
            rows * f,
            row_loss.len(),
            importance.len()
        )));
    }
    if let Some(d) = &dout {
        if d.len() != rows * f {
            return Err(KernelError::Invalid(
                "loss: dout has the wrong length".into(),
            ));
        }
    }
    let ctx = RowLoss {
        out,
        x,
        importance,
        scale: s.scale,
        res_factor: s.res_factor,
    };
    let rows_per_task = 64;
    match (s.kind, dout) {
        (LossKind::L2, Some(d)) => row_loss
            .par_chunks_mut(rows_per_task)
            .zip(d.par_chunks_mut(rows_per_task * f.max(1)))
            .enumerate()
            .for_each(|(t, (rl, dr))| ctx.rows::<L2>(t * rows_per_task, rl, Some(dr))),
        (LossKind::L1, Some(d)) => row_loss
            .par_chunks_mut(rows_per_task)
            .zip(d.par_chunks_mut(rows_per_task * f.max(1)))
            .enumerate()
            .for_each(|(t, (rl, dr))| ctx.rows::<L1>(t * rows_per_task, rl, Some(dr))),
        (LossKind::L2, None) => row_loss
            .par_chunks_mut(rows_per_task)
            .enumerate()
            .for_each(|(t, rl)| ctx.rows::<L2>(t * rows_per_task, rl, None)),
        (LossKind::L1, None) => row_loss
            .par_chunks_mut(rows_per_task)
            .enumerate()
            .for_each(|(t, rl)| ctx.rows::<L1>(t * rows_per_task, rl, None)),
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
        if e > T::zero() {
            T::one()
        } else if e < T::zero() {
            -T::one()
        } else {
            T::zero()
        }
    }
}

/// `Σ_j imp_j·ℓ(o_j)` over a run of zero labels, with eight partial sums so that the
/// additions do not wait on each other.
#[inline(always)]
fn dense_run<T: Scalar, L: ElemLoss>(o: &[T], imp: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let (oc, ot) = (o.chunks_exact(8), o.chunks_exact(8).remainder());
    let ic = imp.chunks_exact(8);
    let it = ic.remainder();
    for (oc, ic) in oc.zip(ic) {
        for l in 0..8 {
            lanes[l] += ic[l] * L::loss(oc[l]);
        }
    }
    let mut acc = lanes.iter().copied().sum::<T>();
    for (&o, &w) in ot.iter().zip(it) {
        acc += w * L::loss(o);
    }
    acc
}

/// The operands of the loss, shared by all rows.
struct RowLoss<'a, T> {
    out: &'a [T],
    x: &'a Csr<Vec<u32>, Vec<T>>,
    importance: &'a [T],
    scale: T,
    res_factor: T,
}

impl<T: Scalar> RowLoss<'_, T> {
    /// Rows `first..first + row_loss.len()`: the label is 0 between active columns, so
    /// each row is a few dense runs (tight loops) and the active cells between them.
    fn rows<L: ElemLoss>(&self, first: usize, row_loss: &mut [T], mut dout: Option<&mut [T]>) {
        let f = self.x.cols;
        let imp = self.importance;
        for (i, rl) in row_loss.iter_mut().enumerate() {
            let row = first + i;
            let o = &self.out[row * f..(row + 1) * f];
            let mut d = dout.as_deref_mut().map(|d| &mut d[i * f..(i + 1) * f]);
            let mut acc = T::zero();
            let run = |lo: usize, hi: usize, acc: &mut T, d: &mut Option<&mut [T]>| {
                *acc += dense_run::<T, L>(&o[lo..hi], &imp[lo..hi]);
                if let Some(d) = d.as_deref_mut() {
                    for ((d, &o), &w) in d[lo..hi].iter_mut().zip(&o[lo..hi]).zip(&imp[lo..hi]) {
                        *d = self.scale * w * L::grad(o);
                    }
                }
            };
            let mut start = 0;
            for (c, v) in row_entries(self.x, row) {
                run(start, c, &mut acc, &mut d);
                let e = o[c] - (v.max(T::zero()) + self.res_factor * v);
                acc += imp[c] * L::loss(e);
                if let Some(d) = d.as_deref_mut() {
                    d[c] = self.scale * imp[c] * L::grad(e);
                }
                start = c + 1;
            }
            run(start, f, &mut acc, &mut d);
            *rl = self.scale * acc;
        }
    }
}
