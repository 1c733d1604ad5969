//! The cross-block factors of a deeper model (module documentation of [`super`]): block
//! `l` reads the stream `a_l = W_E x + Σ_{m<l} (W2_m h_m + b2_m)`, so its pre-activation
//! needs, besides `Aᵀ_l`, one `H_l×H_m` factor per earlier block and one bias:
//!
//! ```text
//! forward:   G_{l,m} = W1_l W2_m  (H_l×H_m; tied: W1_l W1_mᵀ)    β_l = Σ_{m<l} W1_l b2_m  (H_l)
//! backward:  dW1_l += dG_{l,m} W2_mᵀ + dβ_l b2_mᵀ                 (H_l×D)
//!            dW2_m += W1_lᵀ dG_{l,m}   (tied: dW1_m += dG_{l,m}ᵀ W1_l)
//!            db2_m += W1_lᵀ dβ_l
//! ```
//!
//! Each costs `D·H_l·H_m` (or `D·H_l`) multiply-adds per step, independent of the batch.
//! The backward pass adds to the gradients the other blocks wrote, so it runs last.

use tmcc_kernels::{Backend, Gemm};

use super::plan::{InstanceState, Plan};
use super::products::{product, Mat};
use super::workspace::Workspace;
use crate::model::Float;
use crate::Error;

/// `G_{l,m}` and `β_l` of every block `l ≥ 1` into the workspace.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, d) = (&plan.bk, st.n, plan.d);
    for (l, wb) in ws.blocks.iter_mut().enumerate().skip(1) {
        let h = plan.h(l);
        for (m, g_lm) in wb.g.iter_mut().enumerate() {
            let g = product(n, plan.w1(l), plan.w2(m), Mat::packed(h, plan.h(m)));
            bk.gemm(&g, &st.params, &st.params, g_lm)?;
            if let Some(off) = plan.off(m).b2 {
                let g = Gemm {
                    beta: if m == 0 { T::zero() } else { T::one() },
                    ..product(n, plan.w1(l), plan.param(off, d, 1), Mat::packed(h, 1))
                };
                bk.gemm(&g, &st.params, &st.params, &mut wb.beta)?;
            }
        }
    }
    Ok(())
}

/// From `dG_{l,m}` and `dβ_l` in the workspace: their terms of `dW1`, `dW2`, `db2`, added
/// to the state's gradients.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, d) = (&plan.bk, st.n, plan.d);
    let add = |g: Gemm<T>| Gemm {
        beta: T::one(),
        ..g
    };
    for (l, wb) in ws.blocks.iter().enumerate().skip(1) {
        let h = plan.h(l);
        for (m, dg) in wb.d_g.iter().enumerate() {
            let dg_mat = Mat::packed(h, plan.h(m));
            let g = add(product(n, dg_mat, plan.w2(m).t(), plan.w1(l)));
            bk.gemm(&g, dg, &st.params, &mut st.grads)?;
            match plan.off(m).w2 {
                Some(off) => {
                    let w2_m = plan.param(off, d, plan.h(m));
                    let g = add(product(n, plan.w1(l).t(), dg_mat, w2_m));
                    bk.gemm(&g, &st.params, dg, &mut st.grads)?;
                }
                None => {
                    let g = add(product(n, dg_mat.t(), plan.w1(l), plan.w1(m)));
                    bk.gemm(&g, dg, &st.params, &mut st.grads)?;
                }
            }
            if let Some(off) = plan.off(m).b2 {
                let (d_beta, b2) = (Mat::packed(h, 1), plan.param(off, d, 1));
                let g = add(product(n, d_beta, b2.t(), plan.w1(l)));
                bk.gemm(&g, &wb.d_beta, &st.params, &mut st.grads)?;
                let g = add(product(n, plan.w1(l).t(), d_beta, b2));
                bk.gemm(&g, &st.params, &wb.d_beta, &mut st.grads)?;
            }
        }
    }
    Ok(())
}
