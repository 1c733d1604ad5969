//! Dense element-wise kernels of the CPU backend: fill, bias add, column sums, ReLU and
//! its mask, `axpy`, and the fused Adam/AdamW update. One pass each, vectorized
//! ([`multiversion!`]); rayon over fixed-size chunks only for large buffers.

use rayon::prelude::*;

use super::simd::multiversion;
use super::{check_view, for_blocks_mut, parallel};
use crate::{AdamSpec, KernelError, Result, Scalar, View};

/// Element-wise work is split into tasks of this many elements when it is parallel.
const CHUNK: usize = 1 << 15;

fn same_len(op: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(KernelError::Invalid(format!(
            "{op}: operands have {a} and {b} elements"
        )));
    }
    Ok(())
}

multiversion! {
    fn fill_slice<T: Scalar>(y: &mut [T], value: T) {
        y.iter_mut().for_each(|y| *y = value);
    }
}

pub fn fill<T: Scalar>(buf: &mut [T], value: T) {
    if parallel(buf.len()) {
        buf.par_chunks_mut(CHUNK).for_each(|c| fill_slice(c, value));
    } else {
        fill_slice(buf, value);
    }
}

multiversion! {
    /// `y[b,:] += c` for every row of `y` (`width` columns).
    fn add_row<T: Scalar>(y: &mut [T], c: &[T]) {
        let w = c.len();
        for yr in y.chunks_exact_mut(w) {
            yr.iter_mut().zip(c).for_each(|(y, &c)| *y += c);
        }
    }
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
    let c = |k: usize| &bias[bias_view.off + k * bias_view.stride..][..width];
    if parallel(y.len()) {
        // Tasks of whole rows, each inside one instance.
        let rows_per_task = (CHUNK / width).clamp(1, rows);
        y[..instances * block]
            .par_chunks_mut(block)
            .enumerate()
            .for_each(|(k, yk)| {
                yk.par_chunks_mut(rows_per_task * width)
                    .for_each(|t| add_row(t, c(k)))
            });
    } else {
        for (k, yk) in y[..instances * block].chunks_exact_mut(block).enumerate() {
            add_row(yk, c(k));
        }
    }
    Ok(())
}

multiversion! {
    /// `out = Σ_b y[b,:]` over the rows of `y` (`out.len()` columns), rows in order.
    fn sum_rows<T: Scalar>(y: &[T], out: &mut [T]) {
        let w = out.len();
        let mut rows = y.chunks_exact(w);
        match rows.next() {
            Some(first) => out.copy_from_slice(first),
            None => out.iter_mut().for_each(|o| *o = T::zero()),
        }
        for yr in rows {
            out.iter_mut().zip(yr).for_each(|(o, &y)| *o += y);
        }
    }
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
    if width == 0 {
        return Ok(());
    }
    if block == 0 {
        // No rows: the sums are 0. The instance count is unknown; nothing to write.
        return Ok(());
    }
    let instances = y.len() / block;
    super::check_out("col_sum.out", out.len(), out_view, instances, width)?;
    let par = instances > 1 && parallel(y.len());
    for_blocks_mut(out, out_view, instances, width, par, |k, o| {
        sum_rows(&y[k * block..(k + 1) * block], o)
    });
    Ok(())
}

multiversion! {
    fn relu_slice<T: Scalar>(pre: &[T], h: &mut [T]) {
        h.iter_mut()
            .zip(pre)
            .for_each(|(h, &p)| *h = if p > T::zero() { p } else { T::zero() });
    }
}

pub fn relu<T: Scalar>(pre: &[T], h: &mut [T]) -> Result<()> {
    same_len("relu", pre.len(), h.len())?;
    if parallel(h.len()) {
        h.par_chunks_mut(CHUNK)
            .zip(pre.par_chunks(CHUNK))
            .for_each(|(h, p)| relu_slice(p, h));
    } else {
        relu_slice(pre, h);
    }
    Ok(())
}

multiversion! {
    fn relu_mask_slice<T: Scalar>(pre: &[T], g: &mut [T]) {
        g.iter_mut()
            .zip(pre)
            .for_each(|(g, &p)| *g = if p > T::zero() { *g } else { T::zero() });
    }
}

pub fn relu_mask<T: Scalar>(pre: &[T], grad: &mut [T]) -> Result<()> {
    same_len("relu_mask", pre.len(), grad.len())?;
    if parallel(grad.len()) {
        grad.par_chunks_mut(CHUNK)
            .zip(pre.par_chunks(CHUNK))
            .for_each(|(g, p)| relu_mask_slice(p, g));
    } else {
        relu_mask_slice(pre, grad);
    }
    Ok(())
}

multiversion! {
    fn axpy_slice<T: Scalar>(alpha: T, x: &[T], y: &mut [T]) {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y += alpha * x);
    }
}

pub fn axpy<T: Scalar>(alpha: T, x: &[T], y: &mut [T]) -> Result<()> {
    same_len("axpy", x.len(), y.len())?;
    if parallel(y.len()) {
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| axpy_slice(alpha, x, y));
    } else {
        axpy_slice(alpha, x, y);
    }
    Ok(())
}

multiversion! {
    /// PyTorch's Adam step on one chunk: `m ← β1·m + (1−β1)·g`,
    /// `v ← β2·v + (1−β2)·g²`, `θ ← θ·(1 − lr·wd) − (lr/bc1)·m / (√v·(1/√bc2) + ε)`.
    /// (PyTorch divides by `√bc2`; multiplying by its reciprocal saves a division per
    /// element, the slowest instruction here, at ≤ 1 ulp of `√v/√bc2`.)
    fn adam_slice<T: Scalar>(s: &AdamSpec<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        let one = T::one();
        let decay = one - s.lr * s.weight_decay;
        let step = s.lr / s.bias_correction1;
        let inv_sqrt_bc2 = one / s.bias_correction2.sqrt();
        let (b1, b2) = (s.beta1, s.beta2);
        let (c1, c2) = (one - b1, one - b2);
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let gi = g[i];
            let mi = b1 * m[i] + c1 * gi;
            let vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            let denom = vi.sqrt() * inv_sqrt_bc2 + s.eps;
            p[i] = p[i] * decay - step * mi / denom;
        }
    }
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
    if parallel(params.len()) {
        params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| adam_slice(s, p, g, m, v));
    } else {
        adam_slice(s, params, grads, m, v);
    }
    Ok(())
}
