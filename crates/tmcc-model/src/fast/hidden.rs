//! The hidden layers, block after block: `pre_l = x·Aᵀ_l + Σ_{m<l} h_m·G_{l,m}ᵀ + b1_l + β_l`
//! (a sparse gather of the rows of `Aᵀ_l`, `H_l` per active feature, then one `B×H_m×H_l`
//! product per earlier block), `h_l = act(pre_l)`. Backward, last block first:
//! `dh_l += Σ_{m>l} dpre_m·G_{m,l}`, `dpre_l = dh_l ⊙ act'(pre_l)`, `db1_l = dβ_l = Σ_b dpre_l`,
//! the scatter `dAᵀ_l = xᵀ·dpre_l` (`F×H_l`) and `dG_{l,m} = dpre_lᵀ·h_m`. With ReLU,
//! `h_l > 0` exactly where `pre_l > 0`, so `pre_l` need not be kept: it lives in `dh_l`
//! until the backward pass overwrites it; GELU keeps it.

use tmcc_kernels::{Backend, Gemm};

use super::act;
use super::plan::{InstanceState, Plan};
use super::products::{product, sparse, Mat};
use super::workspace::Workspace;
use crate::act::Act;
use crate::model::Float;
use crate::Error;

/// `pre_l` (in `dh_l`, or `pre_l` with GELU) and `h_l` (`B×H_l`) of every block.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, rows) = (&plan.bk, st.n, ws.rows);
    for l in 0..plan.blocks.len() {
        let h = plan.h(l);
        let (earlier, rest) = ws.blocks.split_at_mut(l);
        let wb = &mut rest[0];
        let s = sparse(rows, Mat::packed(plan.f, h), T::zero());
        bk.sparse_gather(&s, &ws.x, &wb.a_t, &mut wb.dh)?;
        for (m, (em, g_lm)) in earlier.iter().zip(&wb.g).enumerate() {
            let hm = plan.h(m);
            let g = Gemm {
                beta: T::one(),
                ..product(
                    n,
                    Mat::packed(rows, hm),
                    Mat::packed(h, hm).t(),
                    Mat::packed(rows, h),
                )
            };
            bk.gemm(&g, &em.h, g_lm, &mut wb.dh)?;
        }
        if let Some(off) = plan.off(l).b1 {
            bk.add_bias(rows, h, &st.params, plan.param_view(off), &mut wb.dh)?;
        }
        if l > 0 && plan.off(l).b2.is_some() {
            let beta = Mat::packed(h, 1).op.view;
            bk.add_bias(rows, h, &wb.beta, beta, &mut wb.dh)?;
        }
        let pre = if plan.act == Act::Gelu {
            std::mem::swap(&mut wb.dh, &mut wb.pre);
            &wb.pre
        } else {
            &wb.dh
        };
        act::forward(bk, plan.act, pre, &mut wb.h)?;
    }
    Ok(())
}

/// From every `dh_l` (what the output sent back, in `dh_l`), last block first: `dpre_l`
/// (in place), `db1_l` into the state's gradients, `dAᵀ_l`, `dG_{l,m}` and `dβ_l` into the
/// workspace.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, rows) = (&plan.bk, st.n, ws.rows);
    for l in (0..plan.blocks.len()).rev() {
        let h = plan.h(l);
        let (head, later) = ws.blocks.split_at_mut(l + 1);
        let (earlier, wb) = head.split_at_mut(l);
        let wb = &mut wb[0];
        for (m, lm) in later.iter().enumerate().map(|(i, b)| (l + 1 + i, b)) {
            let hm = plan.h(m);
            let g = Gemm {
                beta: T::one(),
                ..product(
                    n,
                    Mat::packed(rows, hm),
                    Mat::packed(hm, h),
                    Mat::packed(rows, h),
                )
            };
            bk.gemm(&g, &lm.dh, &lm.g[l], &mut wb.dh)?;
        }
        act::backward(bk, plan.act, &wb.pre, &wb.h, &mut wb.dh)?;
        if let Some(off) = plan.off(l).b1 {
            bk.col_sum(rows, h, &wb.dh, &mut st.grads, plan.param_view(off))?;
        }
        if l > 0 && plan.off(l).b2.is_some() {
            let beta = Mat::packed(h, 1).op.view;
            bk.col_sum(rows, h, &wb.dh, &mut wb.d_beta, beta)?;
        }
        bk.fill(&mut wb.d_a_t, T::zero())?;
        let s = sparse(rows, Mat::packed(plan.f, h), T::zero());
        bk.sparse_scatter(&s, &ws.x, &wb.dh, &mut wb.d_a_t)?;
        for (m, (em, dg)) in earlier.iter().zip(&mut wb.d_g).enumerate() {
            let hm = plan.h(m);
            let g = product(
                n,
                Mat::packed(rows, h).t(),
                Mat::packed(rows, hm),
                Mat::packed(h, hm),
            );
            bk.gemm(&g, &wb.dh, &em.h, dg)?;
        }
    }
    Ok(())
}
