//! The embedding products: the weight products that carry `W_E` into feature space, and
//! their gradients back through it, for every block `l` (llm.c style, forward beside
//! backward).
//!
//! ```text
//! forward:   Aᵀ_l = W_Eᵀ W1_lᵀ (F×H_l)    C_l = W_Eᵀ W2_l (F×H_l)    c_l = W_Eᵀ b2_l (F)
//! backward:  dW1_l = (dAᵀ_l [+ dC_l if tied])ᵀ W_Eᵀ (H_l×D)
//!            dW2_l = W_E dC_l (D×H_l)     db2_l = W_E dc_l (D)
//! ```
//!
//! Without an embedding `Aᵀ_l = W1_lᵀ·I` and `dW1_l = I·dAᵀ_lᵀ` (products with the
//! identity, so the gather and scatter of `x` run over contiguous rows), `C_l = W2_l`,
//! `c_l = b2_l`. The backward pass overwrites these gradients (tied without an embedding,
//! it adds to the `dW1_l = h_lᵀ·dout` the output layer wrote); the cross-block terms
//! ([`super::cross`]) are added after it.

use tmcc_kernels::{Backend, Gemm};

use super::plan::{InstanceState, Plan};
use super::products::{product, Mat};
use super::workspace::Workspace;
use crate::model::Float;
use crate::Error;

/// `Aᵀ_l`, `C_l`, `c_l` of every block of the state into the workspace.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, f, d) = (&plan.bk, st.n, plan.f, plan.d);
    for (l, (bp, wb)) in plan.blocks.iter().zip(&mut ws.blocks).enumerate() {
        let h = bp.h;
        let fh = Mat::packed(f, h);
        let Some(e) = &st.embed else {
            let eye = bp.eye.as_ref().expect("no embedding");
            let g = product(n, plan.w1(l).t(), Mat::shared(h, h), fh);
            bk.gemm(&g, &st.params, eye, &mut wb.a_t)?;
            continue;
        };
        let emb = Mat::packed(d, f);
        let g = product(n, emb.t(), plan.w1(l).t(), fh);
        bk.gemm(&g, e, &st.params, &mut wb.a_t)?;
        if let Some(off) = bp.off.w2 {
            let g = product(n, emb.t(), plan.param(off, d, h), fh);
            bk.gemm(&g, e, &st.params, &mut wb.c_mat)?;
        }
        if let Some(off) = bp.off.b2 {
            let g = product(n, emb.t(), plan.param(off, d, 1), Mat::packed(f, 1));
            bk.gemm(&g, e, &st.params, &mut wb.c_vec)?;
        }
    }
    Ok(())
}

/// From every block's `dAᵀ_l`, `dC_l`, `dc_l` in the workspace: `dW1_l`, `dW2_l`, `db2_l`
/// into the state's gradients. Tied without an embedding, `dW1_l` already holds `dC_lᵀ`
/// and this adds to it.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, f, d) = (&plan.bk, st.n, plan.f, plan.d);
    for (l, (bp, gr)) in plan.blocks.iter().zip(&mut ws.blocks).enumerate() {
        let h = bp.h;
        let fh = Mat::packed(f, h);
        let Some(e) = &st.embed else {
            let eye = bp.eye.as_ref().expect("no embedding");
            let tied = bp.off.w2.is_none();
            let g = Gemm {
                beta: if tied { T::one() } else { T::zero() },
                ..product(n, Mat::shared(h, h), fh.t(), plan.w1(l))
            };
            bk.gemm(&g, eye, &gr.d_a_t, &mut st.grads)?;
            continue;
        };
        if bp.off.w2.is_none() {
            bk.axpy(T::one(), &gr.d_c_mat, &mut gr.d_a_t)?;
        }
        let emb = Mat::packed(d, f);
        let g = product(n, fh.t(), emb.t(), plan.w1(l));
        bk.gemm(&g, &gr.d_a_t, e, &mut st.grads)?;
        if let Some(off) = bp.off.w2 {
            let g = product(n, emb, fh, plan.param(off, d, h));
            bk.gemm(&g, e, &gr.d_c_mat, &mut st.grads)?;
        }
        if let Some(off) = bp.off.b2 {
            let g = product(n, emb, Mat::packed(f, 1), plan.param(off, d, 1));
            bk.gemm(&g, e, &gr.d_c_vec, &mut st.grads)?;
        }
    }
    Ok(())
}
