//! The hidden layer: `pre = x·Aᵀ + b1` by a sparse gather of the rows of `Aᵀ` (`H` per
//! active feature), `h = ReLU(pre)`; backward `dpre = dh ⊙ [h > 0]`, `db1 = Σ_b dpre`
//! and the scatter `dAᵀ = xᵀ·dpre` (`F×H`). `h > 0` holds exactly where `pre > 0`, so
//! `pre` need not be kept: it lives in `ws.dh` until the backward pass overwrites it.

use tmcc_kernels::Backend;

use super::plan::{InstanceState, Plan};
use super::products::{sparse, Mat};
use super::workspace::Workspace;
use crate::model::Float;
use crate::Error;

/// `pre` (in `ws.dh`) and `h` (`B×H`) of the loaded batch.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, h, rows) = (&plan.bk, plan.h, ws.rows);
    let s = sparse(rows, Mat::packed(plan.f, h), T::zero());
    bk.sparse_gather(&s, &ws.x, &ws.w.a_t, &mut ws.dh)?;
    if let Some(off) = plan.off.b1 {
        bk.add_bias(rows, h, &st.params, plan.param_view(off), &mut ws.dh)?;
    }
    bk.relu(&ws.dh, &mut ws.h)?;
    Ok(())
}

/// From `dh` in `ws.dh`: the ReLU mask (in place, giving `dpre`), `db1` into the state's
/// gradients and `dAᵀ` into the workspace.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, h, rows) = (&plan.bk, plan.h, ws.rows);
    bk.relu_mask(&ws.h, &mut ws.dh)?;
    if let Some(off) = plan.off.b1 {
        bk.col_sum(rows, h, &ws.dh, &mut st.grads, plan.param_view(off))?;
    }
    bk.fill(&mut ws.g.d_a_t, T::zero())?;
    let s = sparse(rows, Mat::packed(plan.f, h), T::zero());
    bk.sparse_scatter(&s, &ws.x, &ws.dh, &mut ws.g.d_a_t)?;
    Ok(())
}
