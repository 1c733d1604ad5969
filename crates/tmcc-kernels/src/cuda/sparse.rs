//! Host side of the sparse-batch kernels (`sparse.cu`): gather, scatter and the loss.
//! One warp per CSR row, eight rows per block of 32×8 threads, all instances in one
//! launch (the instance of a row is `row / B`).

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::{device_err, Device};
use crate::bounds::{check_csr_lengths, check_loss, check_sparse};
use crate::{Csr, KernelError, LossKind, LossSpec, Result, SparseSpec};

const ROWS_PER_BLOCK: usize = 8;

type DevCsr = Csr<CudaSlice<u32>, CudaSlice<f32>>;

/// A launch with one warp per row.
fn rows_grid(rows: usize) -> Result<LaunchConfig> {
    let blocks = rows.div_ceil(ROWS_PER_BLOCK);
    if blocks > i32::MAX as usize {
        return Err(KernelError::Invalid(format!("{rows} rows: too many")));
    }
    Ok(LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (32, ROWS_PER_BLOCK as u32, 1),
        shared_mem_bytes: 0,
    })
}

/// The CPU backend's CSR checks, except `row_ptr[rows] == nnz` and the column range
/// (device reads); the kernels clamp row offsets to `nnz` instead.
fn check_csr(x: &DevCsr) -> Result<usize> {
    check_csr_lengths(x)
}

pub(super) fn gather(
    d: &Device,
    s: &SparseSpec<f32>,
    x: &DevCsr,
    table: &CudaSlice<f32>,
    y: &mut CudaSlice<f32>,
) -> Result<()> {
    let rows = check_csr(x)?;
    let (bsz, w) = (x.rows_per_instance, s.width);
    check_sparse(false, s, x, rows, table.len(), y.len())?;
    if w == 0 || rows == 0 {
        return Ok(());
    }
    let (rows64, bsz64, cols64, w64, nnz64) = (
        rows as u64,
        bsz as u64,
        x.cols as u64,
        w as u64,
        x.nnz as u64,
    );
    let (t_off, t_stride) = (s.t.off as u64, s.t.stride as u64);
    let (trs, tcs) = (s.t_row_stride as u64, s.t_col_stride as u64);
    let beta = s.beta;
    let mut l = d.stream.launch_builder(&d.k.gather);
    l.arg(&rows64).arg(&bsz64).arg(&cols64).arg(&w64);
    l.arg(&x.row_ptr).arg(&x.col).arg(&x.val).arg(&nnz64);
    l.arg(table).arg(&t_off).arg(&t_stride).arg(&trs).arg(&tcs);
    l.arg(&beta).arg(y);
    // SAFETY: matches gather_f32's signature; the table view covers columns < cols of
    // every instance, y holds rows·width elements, CSR offsets are clamped to nnz.
    unsafe { l.launch(rows_grid(rows)?) }.map_err(device_err("sparse_gather"))?;
    Ok(())
}

pub(super) fn scatter(
    d: &Device,
    s: &SparseSpec<f32>,
    x: &DevCsr,
    y: &CudaSlice<f32>,
    table: &mut CudaSlice<f32>,
) -> Result<()> {
    let rows = check_csr(x)?;
    let (bsz, w) = (x.rows_per_instance, s.width);
    check_sparse(true, s, x, rows, table.len(), y.len())?;
    if w == 0 || rows == 0 {
        return Ok(());
    }
    let (rows64, bsz64, cols64, w64, nnz64) = (
        rows as u64,
        bsz as u64,
        x.cols as u64,
        w as u64,
        x.nnz as u64,
    );
    let (t_off, t_stride) = (s.t.off as u64, s.t.stride as u64);
    let (trs, tcs) = (s.t_row_stride as u64, s.t_col_stride as u64);
    let mut l = d.stream.launch_builder(&d.k.scatter);
    l.arg(&rows64).arg(&bsz64).arg(&cols64).arg(&w64);
    l.arg(&x.row_ptr).arg(&x.col).arg(&x.val).arg(&nnz64);
    l.arg(y)
        .arg(table)
        .arg(&t_off)
        .arg(&t_stride)
        .arg(&trs)
        .arg(&tcs);
    // SAFETY: matches scatter_f32's signature; bounds as for the gather.
    unsafe { l.launch(rows_grid(rows)?) }.map_err(device_err("sparse_scatter"))?;
    Ok(())
}

pub(super) fn loss(
    d: &Device,
    spec: &LossSpec<f32>,
    out: &CudaSlice<f32>,
    y: &DevCsr,
    importance: &CudaSlice<f32>,
    row_loss: &mut CudaSlice<f32>,
    dout: Option<&mut CudaSlice<f32>>,
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
    let kind: i32 = match spec.kind {
        LossKind::L2 => 0,
        LossKind::L1 => 1,
    };
    let (rows64, cols64, nnz64) = (rows as u64, f as u64, y.nnz as u64);
    let scale = spec.scale;
    let want_grad: i32 = dout.is_some() as i32;
    let mut l = d.stream.launch_builder(&d.k.loss);
    l.arg(&kind).arg(&rows64).arg(&cols64).arg(out);
    l.arg(&y.row_ptr).arg(&y.col).arg(&y.val).arg(&nnz64);
    l.arg(importance).arg(&scale).arg(row_loss);
    match dout {
        Some(dd) => l.arg(dd),
        // Never written when want_grad = 0; any valid pointer does.
        None => l.arg(out),
    };
    l.arg(&want_grad);
    // SAFETY: matches loss_f32's signature; out and dout hold rows·F elements, row_loss
    // rows, importance F; CSR offsets are clamped to nnz and columns ≥ F skipped.
    unsafe { l.launch(rows_grid(rows)?) }.map_err(device_err("loss"))?;
    Ok(())
}
