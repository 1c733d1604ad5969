//! Dense element-wise kernels of the CPU backend: bias add, column sums, ReLU and its
//! mask, `axpy`, and the fused Adam/AdamW update. Rayon over fixed-size chunks.

use rayon::prelude::*;

use super::{check_view, split_mut};
use crate::{AdamSpec, KernelError, Result, Scalar, View};

/// Element-wise work is split into tasks of this many elements; smaller buffers run on
/// the calling thread (a rayon hand-off costs more than the work).
const CHUNK: usize = 1 << 15;

fn same_len(op: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(KernelError::Invalid(format!(
            "{op}: operands have {a} and {b} elements"
        )));
    }
    Ok(())
}

/// `y[k,b,:] += bias[k,:]` with `y` packed as `K×rows×width`.
pub fn add_bias<T: Scalar>(
    rows: usize,
    width: usize,
    bias: &[T],
    bias_view: View,
    y: &mut [T],
) -> Result<()> {
    let block = rows * width;
    if block == 0 {
        return Ok(());
    }
    let instances = y.len() / block;
    check_view("add_bias.bias", bias.len(), bias_view, instances, width)?;
    y.par_chunks_mut(width)
        .with_min_len(256)
        .enumerate()
        .for_each(|(row, yr)| {
            let k = row / rows;
            let c = &bias[bias_view.off + k * bias_view.stride..][..width];
            yr.iter_mut().zip(c).for_each(|(y, &c)| *y += c);
        });
    Ok(())
}

/// `out[k,:] = Σ_b y[k,b,:]` with `y` packed as `K×rows×width`.
pub fn col_sum<T: Scalar>(
    rows: usize,
    width: usize,
    y: &[T],
    out: &mut [T],
    out_view: View,
) -> Result<()> {
    let block = rows * width;
    if block == 0 {
        return Ok(());
    }
    let instances = y.len() / block;
    let blocks = split_mut("col_sum.out", out, out_view, instances, width)?;
    blocks.into_par_iter().enumerate().for_each(|(k, o)| {
        o.iter_mut().for_each(|x| *x = T::zero());
        for yr in y[k * block..(k + 1) * block].chunks_exact(width) {
            o.iter_mut().zip(yr).for_each(|(o, &y)| *o += y);
        }
    });
    Ok(())
}

pub fn relu<T: Scalar>(pre: &[T], h: &mut [T]) -> Result<()> {
    same_len("relu", pre.len(), h.len())?;
    h.par_chunks_mut(CHUNK)
        .zip(pre.par_chunks(CHUNK))
        .for_each(|(h, p)| {
            h.iter_mut()
                .zip(p)
                .for_each(|(h, &p)| *h = if p > T::zero() { p } else { T::zero() })
        });
    Ok(())
}

pub fn relu_mask<T: Scalar>(pre: &[T], grad: &mut [T]) -> Result<()> {
    same_len("relu_mask", pre.len(), grad.len())?;
    grad.par_chunks_mut(CHUNK)
        .zip(pre.par_chunks(CHUNK))
        .for_each(|(g, p)| {
            g.iter_mut().zip(p).for_each(|(g, &p)| {
                if p <= T::zero() {
                    *g = T::zero()
                }
            })
        });
    Ok(())
}

pub fn axpy<T: Scalar>(alpha: T, x: &[T], y: &mut [T]) -> Result<()> {
    same_len("axpy", x.len(), y.len())?;
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x));
    Ok(())
}

/// PyTorch's Adam (and AdamW with decoupled decay), fused into one pass.
pub fn adam<T: Scalar>(
    s: &AdamSpec<T>,
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
) -> Result<()> {
    same_len("adam.grads", params.len(), grads.len())?;
    same_len("adam.m", params.len(), m.len())?;
    same_len("adam.v", params.len(), v.len())?;
    let one = T::one();
    let decay = one - s.lr * s.weight_decay;
    let step = s.lr / s.bias_correction1;
    let sqrt_bc2 = s.bias_correction2.sqrt();
    params
        .par_chunks_mut(CHUNK)
        .zip(grads.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                let gi = g[i];
                m[i] = s.beta1 * m[i] + (one - s.beta1) * gi;
                v[i] = s.beta2 * v[i] + (one - s.beta2) * gi * gi;
                let denom = v[i].sqrt() / sqrt_bc2 + s.eps;
                p[i] = p[i] * decay - step * m[i] / denom;
            }
        });
    Ok(())
}
