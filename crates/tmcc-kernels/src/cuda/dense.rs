//! Host side of the dense kernels (`gemm.cu`, `elementwise.cu`): the CPU backend's checks,
//! then one launch for all instances. Kernel arguments are pushed in the exact order and
//! C types of the `.cu` signatures (`unsigned int` = `u32`, `unsigned long long` = `u64`,
//! `int` = `i32`, pointers = `CudaSlice`).

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::{check_out, check_view, device_err, Device};
use crate::{AdamSpec, Gemm, KernelError, Result, View};

/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;
/// Most blocks of a grid-stride launch (enough to fill any current GPU).
const MAX_BLOCKS: usize = 65_535;
/// The hardware limit of grid dimensions y and z.
const MAX_GRID_YZ: usize = 65_535;

/// A grid-stride launch over `n` elements.
pub(super) fn grid_1d(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn same_len(op: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(KernelError::Invalid(format!(
            "{op}: operands have {a} and {b} elements"
        )));
    }
    Ok(())
}

fn dim_u32(op: &str, name: &str, v: usize) -> Result<u32> {
    u32::try_from(v)
        .ok()
        .filter(|&v| v < i32::MAX as u32)
        .ok_or_else(|| KernelError::Invalid(format!("{op}: {name} = {v} is too large")))
}

pub(super) fn fill(d: &Device, buf: &mut CudaSlice<f32>, value: f32) -> Result<()> {
    let n = buf.len() as u64;
    if n == 0 {
        return Ok(());
    }
    if value.to_bits() == 0 {
        return d.stream.memset_zeros(buf).map_err(device_err("fill"));
    }
    let mut l = d.stream.launch_builder(&d.k.fill);
    l.arg(buf).arg(&n).arg(&value);
    // SAFETY: fill_f32(float*, u64, float) writes elements 0..n of `buf`.
    unsafe { l.launch(grid_1d(n as usize)) }.map_err(device_err("fill"))?;
    Ok(())
}

pub(super) fn gemm(
    d: &Device,
    g: &Gemm<f32>,
    a: &CudaSlice<f32>,
    b: &CudaSlice<f32>,
    c: &mut CudaSlice<f32>,
) -> Result<()> {
    let (m, n, k) = (g.m, g.n, g.k);
    check_view("gemm.a", a.len(), g.a.view, g.batch, m.saturating_mul(k))?;
    check_view("gemm.b", b.len(), g.b.view, g.batch, k.saturating_mul(n))?;
    check_out("gemm.c", c.len(), g.c, g.batch, m.saturating_mul(n))?;
    if g.batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    let (m32, n32, k32) = (
        dim_u32("gemm", "m", m)?,
        dim_u32("gemm", "n", n)?,
        dim_u32("gemm", "k", k)?,
    );
    // Small tiles when one side is small (e.g. n = 1): less padding work.
    let (func, tile) = if m <= 32 || n <= 32 {
        (&d.k.gemm_32, 32)
    } else {
        (&d.k.gemm_64, 64)
    };
    let (gx, gy) = (n.div_ceil(tile), m.div_ceil(tile));
    if gy > MAX_GRID_YZ {
        return Err(KernelError::Invalid(format!(
            "gemm: m = {m} needs {gy} row tiles, more than {MAX_GRID_YZ}"
        )));
    }
    let (alpha, beta) = (g.alpha, g.beta);
    let (ta, tb) = (g.a.trans as i32, g.b.trans as i32);
    let (a_off, a_stride) = (g.a.view.off as u64, g.a.view.stride as u64);
    let (b_off, b_stride) = (g.b.view.off as u64, g.b.view.stride as u64);
    let (c_off, c_stride) = (g.c.off as u64, g.c.stride as u64);
    let mut z0 = 0usize;
    while z0 < g.batch {
        let nz = (g.batch - z0).min(MAX_GRID_YZ);
        let z0_64 = z0 as u64;
        let cfg = LaunchConfig {
            grid_dim: (gx as u32, gy as u32, nz as u32),
            block_dim: (16, 16, 1),
            shared_mem_bytes: 0,
        };
        let mut l = d.stream.launch_builder(func);
        l.arg(&m32).arg(&n32).arg(&k32).arg(&alpha).arg(&beta);
        l.arg(a).arg(&a_off).arg(&a_stride).arg(&ta);
        l.arg(b).arg(&b_off).arg(&b_stride).arg(&tb);
        l.arg(&mut *c).arg(&c_off).arg(&c_stride).arg(&z0_64);
        // SAFETY: the argument list matches gemm_64/gemm_32; check_view/check_out proved
        // every element of op(A), op(B) and C of instances z0..z0+nz in bounds.
        unsafe { l.launch(cfg) }.map_err(device_err("gemm"))?;
        z0 += nz;
    }
    Ok(())
}

pub(super) fn add_bias(
    d: &Device,
    rows: usize,
    width: usize,
    bias: &CudaSlice<f32>,
    bias_view: View,
    y: &mut CudaSlice<f32>,
) -> Result<()> {
    let block = rows.saturating_mul(width);
    if block == 0 {
        return Ok(());
    }
    // Whole rows of y; instance k covers rows k·rows .. (k+1)·rows.
    let y_rows = y.len() / width;
    let instances = y_rows.div_ceil(rows);
    check_view("add_bias.bias", bias.len(), bias_view, instances, width)?;
    let n = (y_rows * width) as u64;
    if n == 0 {
        return Ok(());
    }
    let (rows64, width64) = (rows as u64, width as u64);
    let (off, stride) = (bias_view.off as u64, bias_view.stride as u64);
    let mut l = d.stream.launch_builder(&d.k.add_bias);
    l.arg(y).arg(&n).arg(&rows64).arg(&width64);
    l.arg(bias).arg(&off).arg(&stride);
    // SAFETY: add_bias_f32(float*, u64 n, u64 rows, u64 width, const float*, u64, u64);
    // y has n elements, the bias view was checked for every instance row.
    unsafe { l.launch(grid_1d(n as usize)) }.map_err(device_err("add_bias"))?;
    Ok(())
}

pub(super) fn col_sum(
    d: &Device,
    rows: usize,
    width: usize,
    y: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    out_view: View,
) -> Result<()> {
    let block = rows.saturating_mul(width);
    if block == 0 {
        return Ok(());
    }
    let instances = y.len() / block;
    check_out("col_sum.out", out.len(), out_view, instances, width)?;
    if instances == 0 {
        return Ok(());
    }
    let col_tiles = width.div_ceil(32);
    // Instances per launch so that the grid's x dimension stays below 2^31.
    let per_launch = ((i32::MAX as usize) / col_tiles).max(1);
    let (rows64, width64, tiles64) = (rows as u64, width as u64, col_tiles as u64);
    let (off, stride) = (out_view.off as u64, out_view.stride as u64);
    let mut k0 = 0usize;
    while k0 < instances {
        let nk = (instances - k0).min(per_launch);
        let k0_64 = k0 as u64;
        let cfg = LaunchConfig {
            grid_dim: ((nk * col_tiles) as u32, 1, 1),
            block_dim: (32, 8, 1),
            shared_mem_bytes: 0,
        };
        let mut l = d.stream.launch_builder(&d.k.col_sum);
        l.arg(y).arg(&rows64).arg(&width64).arg(&tiles64);
        l.arg(&mut *out).arg(&off).arg(&stride).arg(&k0_64);
        // SAFETY: col_sum_f32(const float*, u64, u64, u64, float*, u64, u64, u64); y holds
        // `instances` packed blocks, the output view was checked for all of them.
        unsafe { l.launch(cfg) }.map_err(device_err("col_sum"))?;
        k0 += nk;
    }
    Ok(())
}

pub(super) fn relu(d: &Device, pre: &CudaSlice<f32>, h: &mut CudaSlice<f32>) -> Result<()> {
    same_len("relu", pre.len(), h.len())?;
    let n = pre.len() as u64;
    if n == 0 {
        return Ok(());
    }
    let mut l = d.stream.launch_builder(&d.k.relu);
    l.arg(pre).arg(h).arg(&n);
    // SAFETY: relu_f32(const float*, float*, u64); both buffers have n elements.
    unsafe { l.launch(grid_1d(n as usize)) }.map_err(device_err("relu"))?;
    Ok(())
}

pub(super) fn relu_mask(d: &Device, pre: &CudaSlice<f32>, grad: &mut CudaSlice<f32>) -> Result<()> {
    same_len("relu_mask", pre.len(), grad.len())?;
    let n = pre.len() as u64;
    if n == 0 {
        return Ok(());
    }
    let mut l = d.stream.launch_builder(&d.k.relu_mask);
    l.arg(pre).arg(grad).arg(&n);
    // SAFETY: relu_mask_f32(const float*, float*, u64); both buffers have n elements.
    unsafe { l.launch(grid_1d(n as usize)) }.map_err(device_err("relu_mask"))?;
    Ok(())
}

pub(super) fn axpy(
    d: &Device,
    alpha: f32,
    x: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
) -> Result<()> {
    same_len("axpy", x.len(), y.len())?;
    let n = x.len() as u64;
    if n == 0 {
        return Ok(());
    }
    let mut l = d.stream.launch_builder(&d.k.axpy);
    l.arg(&alpha).arg(x).arg(y).arg(&n);
    // SAFETY: axpy_f32(float, const float*, float*, u64); both buffers have n elements.
    unsafe { l.launch(grid_1d(n as usize)) }.map_err(device_err("axpy"))?;
    Ok(())
}

pub(super) fn adam(
    d: &Device,
    s: &AdamSpec<f32>,
    params: &mut CudaSlice<f32>,
    grads: &CudaSlice<f32>,
    m: &mut CudaSlice<f32>,
    v: &mut CudaSlice<f32>,
) -> Result<()> {
    same_len("adam.grads", params.len(), grads.len())?;
    same_len("adam.m", params.len(), m.len())?;
    same_len("adam.v", params.len(), v.len())?;
    let n = params.len() as u64;
    if n == 0 {
        return Ok(());
    }
    // The scalars exactly as the CPU backend forms them (in f32).
    let (b1, b2, eps) = (s.beta1, s.beta2, s.eps);
    let (one_m_b1, one_m_b2) = (1.0f32 - s.beta1, 1.0f32 - s.beta2);
    let decay = 1.0f32 - s.lr * s.weight_decay;
    let step = s.lr / s.bias_correction1;
    let sqrt_bc2 = s.bias_correction2.sqrt();
    let mut l = d.stream.launch_builder(&d.k.adam);
    l.arg(params).arg(grads).arg(m).arg(v).arg(&n);
    l.arg(&b1).arg(&one_m_b1).arg(&b2).arg(&one_m_b2);
    l.arg(&eps).arg(&decay).arg(&step).arg(&sqrt_bc2);
    // SAFETY: adam_f32(float* p, const float* g, float* m, float* v, u64 n, 8 floats);
    // all four buffers have n elements.
    unsafe { l.launch(grid_1d(n as usize)) }.map_err(device_err("adam"))?;
    Ok(())
}
