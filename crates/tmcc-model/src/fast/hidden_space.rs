//! The gradient in hidden space (one block, L2 loss, identity output; module documentation of
//! [`super`]): `dh`, `dC` and `dc` from `B×H` and `H×H` products and sparse gathers,
//! without `out` or `dout` ever existing.
//!
//! ```text
//! Ĉ = σ·diag(imp)·C  (F×H)            M = Cᵀ Ĉ  (H×H)       P = R Ĉ  (F×H)
//! dh = h M + 1·(Ĉᵀc)ᵀ + x P − y Ĉ
//! dC = σ·diag(imp)·[C (hᵀh) + c (1ᵀh) + Rᵀ (xᵀh) − yᵀh]
//! dc = σ·diag(imp)·[C (1ᵀh) + B·c + Rᵀ (xᵀ1) − yᵀ1]
//! ```

use tmcc_kernels::{Backend, Gemm};

use super::plan::{InstanceState, Plan};
use super::products::{product, sparse, Mat};
use super::workspace::{HiddenTables, Workspace};
use super::{embedding, hidden};
use crate::model::Float;
use crate::Error;

/// The gradient of the loaded batch (loaded with its negated labels), forward pass to `h`
/// included, into the state's gradients (overwritten).
pub(super) fn gradient<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
    loss_scale: T,
) -> Result<(), Error> {
    let (bk, n, f, h, rows) = (&plan.bk, st.n, plan.f, plan.h(0), ws.rows);
    if ws.hs.is_none() {
        ws.hs = Some(HiddenTables::new(plan, rows, n)?);
    }
    embedding::forward(plan, st, ws)?;
    hidden::forward(plan, st, ws)?;
    let sigma = loss_scale + loss_scale;
    let (one, zero) = (T::one(), T::zero());
    let (fh, hh) = (Mat::packed(f, h), Mat::packed(h, h));
    let (f1, h1, bh) = (Mat::packed(f, 1), Mat::packed(h, 1), Mat::packed(rows, h));
    let (diag, r_mat) = (Mat::shared(f, f), Mat::packed(f, f));
    let diag_buf = plan.diag_imp.as_ref().expect("hidden-space gradient");
    let p = ws.hs.as_mut().expect("created above");
    let b0 = &mut ws.blocks[0];
    let (c_buf, c) = plan.c_operand(0, &st.params, &b0.a_t, &b0.c_mat);
    let c_vec = plan.c_bias(0, &st.params, &b0.c_vec);
    // Ĉ = σ·diag(imp)·C, M = Cᵀ·Ĉ.
    let g = Gemm {
        alpha: sigma,
        ..product(n, diag, c, fh)
    };
    bk.gemm(&g, diag_buf, c_buf, &mut p.c_hat)?;
    bk.gemm(
        &product(n, c.t(), fh, hh),
        c_buf,
        &p.c_hat,
        &mut p.c_t_c_hat,
    )?;
    // dh = h·M + 1·(Ĉᵀc)ᵀ + x·P − y·Ĉ.
    bk.gemm(&product(n, bh, hh, bh), &b0.h, &p.c_t_c_hat, &mut b0.dh)?;
    if let Some((cb, cv)) = c_vec {
        bk.gemm(&product(n, fh.t(), cv, h1), &p.c_hat, cb, &mut p.c_hat_t_c)?;
        bk.add_bias(rows, h, &p.c_hat_t_c, h1.op.view, &mut b0.dh)?;
    }
    let add_rows = sparse(rows, fh, one);
    if let Some(r) = &st.resid {
        bk.gemm(&product(n, r_mat, fh, fh), r, &p.c_hat, &mut p.r_c_hat)?;
        bk.sparse_gather(&add_rows, &ws.x, &p.r_c_hat, &mut b0.dh)?;
    }
    bk.sparse_gather(&add_rows, &ws.neg_y, &p.c_hat, &mut b0.dh)?;
    // dC = σ·diag(imp)·[C·hᵀh + c·(1ᵀh) + Rᵀ·(xᵀh) − yᵀh].
    bk.gemm(&product(n, bh.t(), bh, hh), &b0.h, &b0.h, &mut p.h_t_h)?;
    bk.gemm(&product(n, c, hh, fh), c_buf, &p.h_t_h, &mut p.d_c_inner)?;
    if let Some((cb, cv)) = c_vec {
        bk.col_sum(rows, h, &b0.h, &mut p.h_sum, h1.op.view)?;
        let g = Gemm {
            beta: one,
            ..product(n, cv, Mat::packed(1, h), fh)
        };
        bk.gemm(&g, cb, &p.h_sum, &mut p.d_c_inner)?;
    }
    let scatter_rows = sparse(rows, fh, zero);
    if let Some(r) = &st.resid {
        bk.fill(&mut p.x_t_h, zero)?;
        bk.sparse_scatter(&scatter_rows, &ws.x, &b0.h, &mut p.x_t_h)?;
        let g = Gemm {
            beta: one,
            ..product(n, r_mat.t(), fh, fh)
        };
        bk.gemm(&g, r, &p.x_t_h, &mut p.d_c_inner)?;
    }
    bk.sparse_scatter(&scatter_rows, &ws.neg_y, &b0.h, &mut p.d_c_inner)?;
    match (plan.embedded, plan.off(0).w2) {
        (true, _) => {
            let g = Gemm {
                alpha: sigma,
                ..product(n, diag, fh, fh)
            };
            bk.gemm(&g, diag_buf, &p.d_c_inner, &mut b0.d_c_mat)?;
        }
        (false, Some(off)) => {
            let g = Gemm {
                alpha: sigma,
                ..product(n, diag, fh, plan.param(off, f, h))
            };
            bk.gemm(&g, diag_buf, &p.d_c_inner, &mut st.grads)?;
        }
        (false, None) => {
            // dW1 (H×F) = dCᵀ = innerᵀ·σ·diag(imp); the scatter of dpre adds to it.
            let g = Gemm {
                alpha: sigma,
                ..product(n, fh.t(), diag, plan.w1(0))
            };
            bk.gemm(&g, &p.d_c_inner, diag_buf, &mut st.grads)?;
        }
    }
    // dc = σ·diag(imp)·[C·(1ᵀh) + B·c + Rᵀ·(xᵀ1) − yᵀ1].
    if let Some((cb, cv)) = c_vec {
        bk.gemm(
            &product(n, c, h1, f1),
            c_buf,
            &p.h_sum,
            &mut p.d_c_vec_inner,
        )?;
        let g = Gemm {
            alpha: T::from_f64(rows as f64),
            beta: one,
            ..product(n, cv, Mat::shared(1, 1), f1)
        };
        bk.gemm(&g, cb, &p.ones, &mut p.d_c_vec_inner)?;
        let count_rows = sparse(rows, f1, zero);
        if let Some(r) = &st.resid {
            bk.fill(&mut p.x_sum, zero)?;
            bk.sparse_scatter(&count_rows, &ws.x, &p.ones, &mut p.x_sum)?;
            let g = Gemm {
                beta: one,
                ..product(n, r_mat.t(), f1, f1)
            };
            bk.gemm(&g, r, &p.x_sum, &mut p.d_c_vec_inner)?;
        }
        bk.sparse_scatter(&count_rows, &ws.neg_y, &p.ones, &mut p.d_c_vec_inner)?;
        let g = |out: Mat| Gemm {
            alpha: sigma,
            ..product(n, diag, f1, out)
        };
        match plan.off(0).b2 {
            Some(_) if plan.embedded => {
                bk.gemm(&g(f1), diag_buf, &p.d_c_vec_inner, &mut b0.d_c_vec)?
            }
            Some(off) => {
                let out = plan.param(off, f, 1);
                bk.gemm(&g(out), diag_buf, &p.d_c_vec_inner, &mut st.grads)?
            }
            None => unreachable!("c exists only with b2"),
        }
    }
    hidden::backward(plan, st, ws)?;
    embedding::backward(plan, st, ws)
}
