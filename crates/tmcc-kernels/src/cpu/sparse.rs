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
        .with_min_len(32)
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
    let two = T::from_f64(2.0);
    // ℓ(e) and ℓ'(e) of one element.
    let elem = |e: T| -> (T, T) {
        match s.kind {
            LossKind::L2 => (e * e, two * e),
            LossKind::L1 => {
                let g = if e > T::zero() {
                    T::one()
                } else if e < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                };
                (e.abs(), g)
            }
        }
    };
    let label = |v: T| v.max(T::zero()) + s.res_factor * v;
    let row_fn = |row: usize, rl: &mut T, dr: Option<&mut [T]>| {
        let o = &out[row * f..(row + 1) * f];
        let mut active = row_entries(x, row).peekable();
        let mut acc = T::zero();
        let mut dr = dr;
        for j in 0..f {
            let y = match active.peek() {
                Some(&(c, v)) if c == j => {
                    active.next();
                    label(v)
                }
                _ => T::zero(),
            };
            let (l, g) = elem(o[j] - y);
            acc += importance[j] * l;
            if let Some(d) = dr.as_deref_mut() {
                d[j] = s.scale * importance[j] * g;
            }
        }
        *rl = s.scale * acc;
    };
    match dout {
        Some(d) => row_loss
            .par_iter_mut()
            .zip(d.par_chunks_mut(f.max(1)))
            .with_min_len(32)
            .enumerate()
            .for_each(|(row, (rl, dr))| row_fn(row, rl, Some(dr))),
        None => row_loss
            .par_iter_mut()
            .with_min_len(32)
            .enumerate()
            .for_each(|(row, rl)| row_fn(row, rl, None)),
    }
    Ok(())
}
