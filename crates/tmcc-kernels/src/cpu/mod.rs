//! The CPU backend: host `Vec`s, faer for the products, hand-written loops (compiled for
//! AVX-512, AVX2 and the baseline, chosen at run time: [`simd`]) for everything else.
//! It is also the reference the CUDA backend is checked against.
//!
//! Parallelism (rayon's global pool): products and scatters run instances side by side;
//! gathers, losses and element-wise passes split their rows into tasks. Work below
//! [`PAR_MIN`] elements runs on the calling thread: at the seed's sizes one instance's
//! step is a chain of 10–100 µs operations, and waking a second thread for each costs
//! about as much as the work (more when the machine is busy). Nothing allocates after
//! the buffers exist.

mod elementwise;
pub mod simd;
mod sparse;

use rayon::prelude::*;

use crate::{
    AdamSpec, Backend, Csr, Gemm, KernelError, LossSpec, Result, Scalar, SparseSpec, View,
};

/// Operations on fewer elements (or multiply-adds for products) than this run on the
/// calling thread.
pub const PAR_MIN: usize = 1 << 17;

/// Whether work of `size` elements is worth splitting across rayon's threads.
#[inline]
pub(crate) fn parallel(size: usize) -> bool {
    size >= PAR_MIN && rayon::current_num_threads() > 1
}

/// The CPU backend. Parallelism comes from rayon's global pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

/// Checks that `instances` blocks of `len` elements at `view` fit in a buffer of `buf_len`.
pub(crate) fn check_view(
    name: &'static str,
    buf_len: usize,
    view: View,
    instances: usize,
    len: usize,
) -> Result<()> {
    let needed = if instances == 0 || len == 0 {
        0
    } else {
        view.off + (instances - 1) * view.stride + len
    };
    if needed > buf_len {
        return Err(KernelError::OutOfBounds {
            name,
            needed,
            len: buf_len,
        });
    }
    Ok(())
}

/// Checks an output view: in bounds, and its instance blocks disjoint.
pub(crate) fn check_out(
    name: &'static str,
    buf_len: usize,
    view: View,
    instances: usize,
    len: usize,
) -> Result<()> {
    check_view(name, buf_len, view, instances, len)?;
    if instances > 1 && len > 0 && view.stride < len {
        return Err(KernelError::Invalid(format!(
            "output `{name}` blocks overlap: stride {} < block length {len}",
            view.stride
        )));
    }
    Ok(())
}

/// Calls `f(k, block_k)` for the disjoint mutable block of `len` elements of each
/// instance `k` at `view` (checked with [`check_out`] first), in parallel when `par`.
/// Allocates nothing.
pub(crate) fn for_blocks_mut<T: Send>(
    buf: &mut [T],
    view: View,
    instances: usize,
    len: usize,
    par: bool,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if instances == 0 || len == 0 {
        return;
    }
    let tail = &mut buf[view.off..];
    if instances == 1 {
        f(0, &mut tail[..len]);
    } else if par {
        tail.par_chunks_mut(view.stride)
            .take(instances)
            .enumerate()
            .for_each(|(k, c)| f(k, &mut c[..len]));
    } else {
        tail.chunks_mut(view.stride)
            .take(instances)
            .enumerate()
            .for_each(|(k, c)| f(k, &mut c[..len]));
    }
}

impl<T: Scalar> Backend<T> for Cpu {
    type Buf = Vec<T>;
    type Idx = Vec<u32>;

    fn name(&self) -> &'static str {
        "cpu"
    }
    fn zeros(&self, len: usize) -> Result<Vec<T>> {
        Ok(vec![T::zero(); len])
    }
    fn upload(&self, host: &[T]) -> Result<Vec<T>> {
        Ok(host.to_vec())
    }
    fn upload_idx(&self, host: &[u32]) -> Result<Vec<u32>> {
        Ok(host.to_vec())
    }
    fn write(&self, dst: &mut Vec<T>, host: &[T]) -> Result<()> {
        dst.clear();
        dst.extend_from_slice(host);
        Ok(())
    }
    fn write_idx(&self, dst: &mut Vec<u32>, host: &[u32]) -> Result<()> {
        dst.clear();
        dst.extend_from_slice(host);
        Ok(())
    }
    fn read(&self, src: &Vec<T>) -> Result<Vec<T>> {
        Ok(src.clone())
    }
    fn len(&self, buf: &Vec<T>) -> usize {
        buf.len()
    }
    fn fill(&self, buf: &mut Vec<T>, value: T) -> Result<()> {
        elementwise::fill(buf, value);
        Ok(())
    }

    fn gemm(&self, g: &Gemm<T>, a: &Vec<T>, b: &Vec<T>, c: &mut Vec<T>) -> Result<()> {
        let (m, n, k) = (g.m, g.n, g.k);
        check_view("gemm.a", a.len(), g.a.view, g.batch, m * k)?;
        check_view("gemm.b", b.len(), g.b.view, g.batch, k * n)?;
        check_out("gemm.c", c.len(), g.c, g.batch, m * n)?;
        // Strides of op(A) (m×k) and op(B) (k×n) inside their row-major storage.
        let (rsa, csa) = if g.a.trans { (1, m) } else { (k, 1) };
        let (rsb, csb) = if g.b.trans { (1, k) } else { (n, 1) };
        let run = |i: usize, cb: &mut [T]| {
            let a_blk = &a[g.a.view.off + i * g.a.view.stride..];
            let b_blk = &b[g.b.view.off + i * g.b.view.stride..];
            // SAFETY: check_view proved every element of op(A), op(B) and C in bounds;
            // C is a distinct &mut borrow, so it cannot alias A or B.
            unsafe {
                T::gemm_strided(
                    m,
                    k,
                    n,
                    g.alpha,
                    a_blk.as_ptr(),
                    rsa as isize,
                    csa as isize,
                    b_blk.as_ptr(),
                    rsb as isize,
                    csb as isize,
                    g.beta,
                    cb.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        };
        let par = g.batch > 1 && parallel(g.batch * m * n * k.max(1));
        for_blocks_mut(c, g.c, g.batch, m * n, par, run);
        Ok(())
    }

    fn sparse_gather(
        &self,
        s: &SparseSpec<T>,
        x: &Csr<Vec<u32>, Vec<T>>,
        table: &Vec<T>,
        y: &mut Vec<T>,
    ) -> Result<()> {
        sparse::gather(s, x, table, y)
    }
    fn sparse_scatter(
        &self,
        s: &SparseSpec<T>,
        x: &Csr<Vec<u32>, Vec<T>>,
        y: &Vec<T>,
        table: &mut Vec<T>,
    ) -> Result<()> {
        sparse::scatter(s, x, y, table)
    }
    fn add_bias(
        &self,
        rows: usize,
        width: usize,
        bias: &Vec<T>,
        bias_view: View,
        y: &mut Vec<T>,
    ) -> Result<()> {
        elementwise::add_bias(rows, width, bias, bias_view, y)
    }
    fn col_sum(
        &self,
        rows: usize,
        width: usize,
        y: &Vec<T>,
        out: &mut Vec<T>,
        out_view: View,
    ) -> Result<()> {
        elementwise::col_sum(rows, width, y, out, out_view)
    }
    fn relu(&self, pre: &Vec<T>, h: &mut Vec<T>) -> Result<()> {
        elementwise::relu(pre, h)
    }
    fn relu_mask(&self, pre: &Vec<T>, grad: &mut Vec<T>) -> Result<()> {
        elementwise::relu_mask(pre, grad)
    }
    fn axpy(&self, alpha: T, x: &Vec<T>, y: &mut Vec<T>) -> Result<()> {
        elementwise::axpy(alpha, x, y)
    }
    fn loss(
        &self,
        spec: &LossSpec<T>,
        out: &Vec<T>,
        x: &Csr<Vec<u32>, Vec<T>>,
        importance: &Vec<T>,
        row_loss: &mut Vec<T>,
        dout: Option<&mut Vec<T>>,
    ) -> Result<()> {
        sparse::loss(
            spec,
            out,
            x,
            importance,
            row_loss,
            dout.map(|d| d.as_mut_slice()),
        )
    }
    fn adam(
        &self,
        spec: &AdamSpec<T>,
        params: &mut Vec<T>,
        grads: &Vec<T>,
        m: &mut Vec<T>,
        v: &mut Vec<T>,
    ) -> Result<()> {
        elementwise::adam(spec, params, grads, m, v)
    }
}
