//! Argument checks shared by every backend, done on the host before any work: an operand
//! view of `K` blocks of `len` elements at `off + k·stride` must fit its buffer (lengths
//! summed with saturation, so a huge view cannot wrap around to look valid), an output's
//! blocks must not overlap, and a CSR batch's arrays must agree in length.

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
pub(crate) fn table_extent<T>(s: &SparseSpec<T>, cols: usize) -> usize {
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
