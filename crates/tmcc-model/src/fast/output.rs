//! The output layer and the loss, in feature space: `z = h·Cᵀ + c + x·R` (`B×F`; the
//! residual table `R` by a sparse gather), `out = act(z)`, the loss against the labels
//! and `∂L/∂out`; backward `dC = doutᵀh`, `dc = Σ_b dout` (straight into `dW2`, `db2`
//! without an embedding; tied, `dW1 = hᵀ·dout`) and `dh = dout·C`.

use tmcc_kernels::{Backend, LossSpec};

use super::plan::{InstanceState, Plan};
use super::products::{product, sparse, Mat};
use super::workspace::Workspace;
use crate::model::Float;
use crate::Error;

/// `z`, `out`, the per-sample losses scaled by `loss_scale` (`ws.row_loss`) and, with
/// `with_grad`, `∂L/∂z` (`ws.dout`), from `h` in the workspace.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
    loss_scale: T,
    with_grad: bool,
) -> Result<(), Error> {
    let (bk, n, f, h, rows) = (&plan.bk, st.n, plan.f, plan.h, ws.rows);
    let (c_buf, c) = plan.c_operand(&st.params, &ws.w.a_t, &ws.w.c_mat);
    let g = product(n, Mat::packed(rows, h), c.t(), Mat::packed(rows, f));
    bk.gemm(&g, &ws.h, c_buf, &mut ws.z)?;
    if let Some((buf, c_vec)) = plan.c_bias(&st.params, &ws.w.c_vec) {
        bk.add_bias(rows, f, buf, c_vec.op.view, &mut ws.z)?;
    }
    if let Some(r) = &st.resid {
        let s = sparse(rows, Mat::packed(f, f), T::one());
        bk.sparse_gather(&s, &ws.x, r, &mut ws.z)?;
    }
    if plan.out_relu {
        bk.relu(&ws.z, &mut ws.out_relu)?;
    }
    let spec = LossSpec {
        kind: plan.loss,
        scale: loss_scale,
    };
    let out = if plan.out_relu { &ws.out_relu } else { &ws.z };
    let dout = with_grad.then_some(&mut ws.dout);
    bk.loss(&spec, out, &ws.y, &plan.importance, &mut ws.row_loss, dout)?;
    if with_grad && plan.out_relu {
        bk.relu_mask(&ws.z, &mut ws.dout)?;
    }
    Ok(())
}

/// From `∂L/∂z` in `ws.dout`: `dC`, `dc` (workspace, or the state's `dW2`, `db2`) and
/// `dh` (`ws.dh`).
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, f, h, rows) = (&plan.bk, st.n, plan.f, plan.h, ws.rows);
    let (dout, hid) = (Mat::packed(rows, f), Mat::packed(rows, h));
    if plan.embedded {
        let g = product(n, dout.t(), hid, Mat::packed(f, h));
        bk.gemm(&g, &ws.dout, &ws.h, &mut ws.g.d_c_mat)?;
        if plan.off.b2.is_some() {
            bk.col_sum(
                rows,
                f,
                &ws.dout,
                &mut ws.g.d_c_vec,
                Mat::packed(f, 1).op.view,
            )?;
        }
    } else {
        match plan.off.w2 {
            Some(off) => {
                let g = product(n, dout.t(), hid, plan.param(off, f, h));
                bk.gemm(&g, &ws.dout, &ws.h, &mut st.grads)?;
            }
            None => {
                // Tied: W2 = W1ᵀ, so dW1 (H×F) starts as hᵀ·dout.
                let g = product(n, hid.t(), dout, plan.w1());
                bk.gemm(&g, &ws.h, &ws.dout, &mut st.grads)?;
            }
        }
        if let Some(off) = plan.off.b2 {
            bk.col_sum(rows, f, &ws.dout, &mut st.grads, plan.param_view(off))?;
        }
    }
    let (c_buf, c) = plan.c_operand(&st.params, &ws.w.a_t, &ws.w.c_mat);
    let g = product(n, dout, c, hid);
    bk.gemm(&g, &ws.dout, c_buf, &mut ws.dh)?;
    Ok(())
}
