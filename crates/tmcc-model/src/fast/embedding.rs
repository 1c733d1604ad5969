//! The embedding block: the weight products that carry `W_E` into feature space, and
//! their gradients back through it (llm.c style, forward beside backward).
//!
//! ```text
//! forward:   Aᵀ = W_Eᵀ W1ᵀ (F×H)    C = W_Eᵀ W2 (F×H)    c = W_Eᵀ b2 (F)
//! backward:  dW1 = (dAᵀ [+ dC if tied])ᵀ W_Eᵀ (H×D)   dW2 = W_E dC (D×H)   db2 = W_E dc (D)
//! ```
//!
//! Without an embedding `Aᵀ = W1ᵀ·I_H` and `dW1 = I_H·dAᵀᵀ` (products with the identity,
//! so the gather and scatter of `x` run over contiguous rows), `C = W2`, `c = b2`.

use tmcc_kernels::{Backend, Gemm};

use super::plan::{InstanceState, Plan};
use super::products::{product, Mat};
use super::workspace::Workspace;
use crate::model::Float;
use crate::Error;

/// `Aᵀ`, `C`, `c` of the state into the workspace.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, f, h, d) = (&plan.bk, st.n, plan.f, plan.h, plan.d);
    let fh = Mat::packed(f, h);
    let Some(e) = &st.embed else {
        let eye = plan.eye_h.as_ref().expect("no embedding");
        let g = product(n, plan.w1().t(), Mat::shared(h, h), fh);
        bk.gemm(&g, &st.params, eye, &mut ws.w.a_t)?;
        return Ok(());
    };
    let emb = Mat::packed(d, f);
    let g = product(n, emb.t(), plan.w1().t(), fh);
    bk.gemm(&g, e, &st.params, &mut ws.w.a_t)?;
    if let Some(off) = plan.off.w2 {
        let g = product(n, emb.t(), plan.param(off, d, h), fh);
        bk.gemm(&g, e, &st.params, &mut ws.w.c_mat)?;
    }
    if let Some(off) = plan.off.b2 {
        let g = product(n, emb.t(), plan.param(off, d, 1), Mat::packed(f, 1));
        bk.gemm(&g, e, &st.params, &mut ws.w.c_vec)?;
    }
    Ok(())
}

/// From `dAᵀ`, `dC`, `dc` in the workspace: `dW1`, `dW2`, `db2` into the state's
/// gradients. Tied without an embedding, `dW1` already holds `dCᵀ` and this adds to it.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    let (bk, n, f, h, d) = (&plan.bk, st.n, plan.f, plan.h, plan.d);
    let fh = Mat::packed(f, h);
    let gr = &mut ws.g;
    let Some(e) = &st.embed else {
        let eye = plan.eye_h.as_ref().expect("no embedding");
        let tied = plan.off.w2.is_none();
        let g = Gemm {
            beta: if tied { T::one() } else { T::zero() },
            ..product(n, Mat::shared(h, h), fh.t(), plan.w1())
        };
        bk.gemm(&g, eye, &gr.d_a_t, &mut st.grads)?;
        return Ok(());
    };
    if plan.off.w2.is_none() {
        bk.axpy(T::one(), &gr.d_c_mat, &mut gr.d_a_t)?;
    }
    let emb = Mat::packed(d, f);
    let g = product(n, fh.t(), emb.t(), plan.w1());
    bk.gemm(&g, &gr.d_a_t, e, &mut st.grads)?;
    if let Some(off) = plan.off.w2 {
        let g = product(n, emb, fh, plan.param(off, d, h));
        bk.gemm(&g, e, &gr.d_c_mat, &mut st.grads)?;
    }
    if let Some(off) = plan.off.b2 {
        let g = product(n, emb, Mat::packed(f, 1), plan.param(off, d, 1));
        bk.gemm(&g, e, &gr.d_c_vec, &mut st.grads)?;
    }
    Ok(())
}
