//! The CPU backend: host `Vec`s, faer for the products, hand-written loops (compiled for
//! AVX-512, AVX2 and the baseline, chosen at run time: [`simd`]) for everything else.
//! It is also the reference the CUDA backend is checked against.
//!
//! Parallelism (rayon's global pool): products and scatters run instances side by side;
//! gathers, losses and element-wise passes split their rows into tasks. Work below
//! [`PAR_MIN`] elements runs on the calling thread: at the seed's sizes one instance's
//! step is a chain of 10–100 µs operations, and waking a second thread for each costs
//! about as much as the work (more when the machine is busy). A single large product
//! (`≥` [`SPLIT_MIN_MACS`]) is computed as two halves, side by side when called from a
//! rayon worker (the halves are the same either way: results never depend on the thread
//! count). Nothing allocates after the buffers exist. Gathers and scatters of a batch with
//! at least [`DENSE_MIN_DENSITY`] active cells run as dense products ([`BatchPath`]).

mod dense_batch;
mod elementwise;
pub mod simd;
mod sparse;

pub use dense_batch::{BatchPath, DENSE_MIN_DENSITY};
pub use sparse::{gather, scatter};

use rayon::prelude::*;

use crate::{AdamSpec, Backend, Csr, Gemm, LossSpec, RawGemm, Result, Scalar, SparseSpec, View};

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

pub(crate) use crate::bounds::{check_out, check_view};

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

/// Products of at least this many multiply-adds are computed as two halves of `C` (along
/// its longer side). A single product (`batch == 1`) called from a rayon worker runs its
/// halves on two threads; the halves are the same either way, so results never depend
/// on the thread count.
pub const SPLIT_MIN_MACS: usize = 1 << 21;

/// `(split into halves, halves on two threads)`.
fn split_single(batch: usize, m: usize, n: usize, k: usize) -> (bool, bool) {
    let split = m * n * k >= SPLIT_MIN_MACS && m.max(n) >= 32;
    let par = split
        && batch == 1
        && rayon::current_num_threads() > 1
        && rayon::current_thread_index().is_some();
    (split, par)
}

/// The rows (`m` ≥ `n`) or columns `lo..hi` of `C` of the product `g`.
///
/// # Safety
/// As [`Scalar::gemm_strided`] for the whole product; `lo..hi` inside it.
unsafe fn gemm_part<T: Scalar>(g: &RawGemm<T>, lo: usize, hi: usize) {
    let part = if g.m >= g.n {
        RawGemm {
            m: hi - lo,
            a: g.a.offset(lo as isize * g.rsa),
            c: g.c.offset(lo as isize * g.rsc),
            ..*g
        }
    } else {
        RawGemm {
            n: hi - lo,
            b: g.b.offset(lo as isize * g.csb),
            c: g.c.offset(lo as isize * g.csc),
            ..*g
        }
    };
    T::gemm_strided(&part)
}

/// Runs the product `g`: whole, or with `split.0` as two halves of `C`, on two threads
/// with `split.1` ([`split_single`]).
///
/// # Safety
/// As [`Scalar::gemm_strided`] for the whole product.
unsafe fn gemm_split<T: Scalar>(g: &RawGemm<T>, split: (bool, bool)) {
    let len = g.m.max(g.n);
    if !split.0 {
        gemm_part(g, 0, len);
    } else if split.1 {
        // SAFETY: the two halves write disjoint blocks of C.
        rayon::join(
            || unsafe { gemm_part(g, 0, len / 2) },
            || unsafe { gemm_part(g, len / 2, len) },
        );
    } else {
        gemm_part(g, 0, len / 2);
        gemm_part(g, len / 2, len);
    }
}

impl<T: Scalar> Backend<T> for Cpu {
    type Buf = Vec<T>;
    type Idx = Vec<u32>;

    fn name(&self) -> &'static str {
        "cpu"
    }
    fn parallel_instances(&self) -> bool {
        true
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
        let split = split_single(g.batch, m, n, k);
        let run = |i: usize, cb: &mut [T]| {
            let a_blk = &a[g.a.view.off + i * g.a.view.stride..];
            let b_blk = &b[g.b.view.off + i * g.b.view.stride..];
            let p = RawGemm {
                m,
                k,
                n,
                alpha: g.alpha,
                a: a_blk.as_ptr(),
                rsa: rsa as isize,
                csa: csa as isize,
                b: b_blk.as_ptr(),
                rsb: rsb as isize,
                csb: csb as isize,
                beta: g.beta,
                c: cb.as_mut_ptr(),
                rsc: n as isize,
                csc: 1,
            };
            // SAFETY: check_view proved every element of op(A), op(B) and C in bounds;
            // C is a distinct &mut borrow, so it cannot alias A or B.
            unsafe { gemm_split(&p, split) }
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
        sparse::gather(BatchPath::for_batch(x), s, x, table, y)
    }
    fn sparse_scatter(
        &self,
        s: &SparseSpec<T>,
        x: &Csr<Vec<u32>, Vec<T>>,
        y: &Vec<T>,
        table: &mut Vec<T>,
    ) -> Result<()> {
        sparse::scatter(BatchPath::for_batch(x), s, x, y, table)
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
        y: &Csr<Vec<u32>, Vec<T>>,
        importance: &Vec<T>,
        row_loss: &mut Vec<T>,
        dout: Option<&mut Vec<T>>,
    ) -> Result<()> {
        sparse::loss(
            spec,
            out,
            y,
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
