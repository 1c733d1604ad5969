//! Argument checks shared by every backend, done on the host before any work: an operand
//! view of `K` blocks of `len` elements at `off + k·stride` must fit its buffer (lengths
//! summed with saturation, so a huge view cannot wrap around to look valid), an output's
//! blocks must not overlap, a CSR batch's arrays must agree in length, and the operands of
//! the sparse gather, scatter and loss must match the batch.

use crate::{Csr, KernelError, Result, SparseSpec, View};

/// Checks that `instances` blocks of `len` elements at `view` fit in `buf_len` elements.
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
        view.off
            .saturating_add((instances - 1).saturating_mul(view.stride))
            .saturating_add(len)
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

/// [`check_view`] for an output: the instances' blocks must also not overlap.
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

/// Elements one instance's table spans in a sparse gather or scatter (`cols` rows of
/// `s.width` elements at the spec's strides).
fn table_extent<T>(s: &SparseSpec<T>, cols: usize) -> usize {
    if cols == 0 || s.width == 0 {
        0
    } else {
        (cols - 1) * s.t_row_stride + (s.width - 1) * s.t_col_stride + 1
    }
}

/// The element count of a buffer, on whichever side it lives.
pub(crate) trait BufLen {
    fn buf_len(&self) -> usize;
}

impl<T> BufLen for Vec<T> {
    fn buf_len(&self) -> usize {
        self.len()
    }
}

#[cfg(feature = "cuda")]
impl<T> BufLen for cudarc::driver::CudaSlice<T> {
    fn buf_len(&self) -> usize {
        self.len()
    }
}

/// Checks the array lengths of a CSR batch and returns its row count
/// (`instances × rows_per_instance`): `row_ptr` has one entry per row plus one, `col` and
/// `val` one per stored entry.
pub(crate) fn check_csr_lengths<I: BufLen, V: BufLen>(x: &Csr<I, V>) -> Result<usize> {
    let rows = x.instances * x.rows_per_instance;
    let (row_ptr, col, val, nnz) = (x.row_ptr.buf_len(), x.col.buf_len(), x.val.buf_len(), x.nnz);
    if row_ptr != rows + 1 || col != nnz || val != nnz {
        return Err(KernelError::Invalid(format!(
            "CSR batch inconsistent: {rows} rows, row_ptr {row_ptr}, col {col}, val {val}, nnz {nnz}"
        )));
    }
    Ok(rows)
}

/// Checks a sparse gather (`scatter == false`: the table read, `Y` written) or scatter
/// (the table written, so its instances' blocks must not overlap) over the CSR batch `x`
/// of `rows` rows: `Y` packed `K×B×width` with at least `rows·width` elements, each
/// instance's table inside its buffer. Returns the elements one instance's table spans.
pub(crate) fn check_sparse<T, I, V>(
    scatter: bool,
    s: &SparseSpec<T>,
    x: &Csr<I, V>,
    rows: usize,
    table_len: usize,
    y_len: usize,
) -> Result<usize> {
    let w = s.width;
    let packed = || {
        if s.y.off != 0 || s.y.stride != x.rows_per_instance * w || y_len < rows * w {
            let what = if scatter {
                "scatter input"
            } else {
                "gather output"
            };
            return Err(KernelError::Invalid(format!(
                "{what} must be packed K×B×width"
            )));
        }
        Ok(())
    };
    let extent = table_extent(s, x.cols);
    if scatter {
        packed()?;
        check_out("scatter.table", table_len, s.t, x.instances, extent)?;
    } else {
        check_view("gather.table", table_len, s.t, x.instances, extent)?;
        packed()?;
    }
    Ok(extent)
}

/// Checks the operands of a loss over a batch of `rows` rows of `f` features: `out` (and
/// `dout`, when given) `rows×f`, `row_loss` one per row, `importance` one per feature.
pub(crate) fn check_loss(
    rows: usize,
    f: usize,
    out: usize,
    importance: usize,
    row_loss: usize,
    dout: Option<usize>,
) -> Result<()> {
    if out != rows * f || row_loss != rows || importance != f {
        return Err(KernelError::Invalid(format!(
            "loss: out {out} (want {}), row_loss {row_loss} (want {rows}), importance \
             {importance} (want {f})",
            rows * f
        )));
    }
    if dout.is_some_and(|d| d != rows * f) {
        return Err(KernelError::Invalid(
            "loss: dout has the wrong length".into(),
        ));
    }
    Ok(())
}
