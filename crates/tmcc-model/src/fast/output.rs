//! The output layer and the loss, in feature space: `z = Σ_l h_l·C_lᵀ + Σ_l c_l + x·R`
//! (`B×F`; the residual table `R` by a sparse gather), `out = out_act(z)`, the loss
//! against the labels and `∂L/∂out`, then `∂L/∂z`; backward, per block,
//! `dC_l = dzᵀh_l`, `dc_l = Σ_b dz` (straight into `dW2_l`, `db2_l` without an embedding;
//! tied, `dW1_l = h_lᵀ·dz`) and `dh_l = dz·C_l`.

use tmcc_kernels::{Backend, Gemm, LossSpec};

use super::act;
use super::plan::{InstanceState, Plan};
use super::products::{product, sparse, Mat};
use super::workspace::Workspace;
use crate::model::Float;
use crate::Error;

/// `z`, `out`, the per-sample losses scaled by `loss_scale` (`ws.row_loss`) and, with
/// `with_grad`, `∂L/∂z` (`ws.dout`), from every `h_l` in the workspace.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
    loss_scale: T,
    with_grad: bool,
) -> Result<(), Error> {
    let (bk, n, f, rows) = (&plan.bk, st.n, plan.f, ws.rows);
    for (l, wb) in ws.blocks.iter().enumerate() {
        let (c_buf, c) = plan.c_operand(l, &st.params, &wb.a_t, &wb.c_mat);
        let g = Gemm {
            beta: if l == 0 { T::zero() } else { T::one() },
            ..product(n, Mat::packed(rows, plan.h(l)), c.t(), Mat::packed(rows, f))
        };
        bk.gemm(&g, &wb.h, c_buf, &mut ws.z)?;
        if let Some((buf, c_vec)) = plan.c_bias(l, &st.params, &wb.c_vec) {
            bk.add_bias(rows, f, buf, c_vec.op.view, &mut ws.z)?;
        }
    }
    if let Some(r) = &st.resid {
        let s = sparse(rows, Mat::packed(f, f), T::one());
        bk.sparse_gather(&s, &ws.x, r, &mut ws.z)?;
    }
    if let Some(a) = plan.out_act {
        act::forward(bk, a, &ws.z, &mut ws.out)?;
    }
    let spec = LossSpec {
        kind: plan.loss,
        scale: loss_scale,
    };
    let out = if plan.out_act.is_some() {
        &ws.out
    } else {
        &ws.z
    };
    let dout = with_grad.then_some(&mut ws.dout);
    bk.loss(&spec, out, &ws.y, &plan.importance, &mut ws.row_loss, dout)?;
    if let (true, Some(a)) = (with_grad, plan.out_act) {
        act::backward(bk, a, &ws.z, &ws.out, &mut ws.dout)?;
    }
    Ok(())
}

/// From `∂L/∂z` in `ws.dout`, for every block: `dC_l`, `dc_l` (workspace, or the state's
/// `dW2_l`, `db2_l`) and `dh_l` (`dh_l`, overwritten).
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, f, rows) = (&plan.bk, st.n, plan.f, ws.rows);
    let dout = Mat::packed(rows, f);
    for (l, wb) in ws.blocks.iter_mut().enumerate() {
        let (h, off) = (plan.h(l), plan.off(l));
        let hid = Mat::packed(rows, h);
        if plan.embedded {
            let g = product(n, dout.t(), hid, Mat::packed(f, h));
            bk.gemm(&g, &ws.dout, &wb.h, &mut wb.d_c_mat)?;
            if off.b2.is_some() {
                let view = Mat::packed(f, 1).op.view;
                bk.col_sum(rows, f, &ws.dout, &mut wb.d_c_vec, view)?;
            }
        } else {
            match off.w2 {
                Some(w2) => {
                    let g = product(n, dout.t(), hid, plan.param(w2, f, h));
                    bk.gemm(&g, &ws.dout, &wb.h, &mut st.grads)?;
                }
                None => {
                    // Tied: W2_l = W1_lᵀ, so dW1_l (H_l×F) starts as h_lᵀ·dout.
                    let g = product(n, hid.t(), dout, plan.w1(l));
                    bk.gemm(&g, &wb.h, &ws.dout, &mut st.grads)?;
                }
            }
            if let Some(b2) = off.b2 {
                bk.col_sum(rows, f, &ws.dout, &mut st.grads, plan.param_view(b2))?;
            }
        }
        let (c_buf, c) = plan.c_operand(l, &st.params, &wb.a_t, &wb.c_mat);
        let g = product(n, dout, c, hid);
        bk.gemm(&g, &ws.dout, c_buf, &mut wb.dh)?;
    }
    Ok(())
}
