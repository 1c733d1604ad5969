//! The plain dense reference path, one instance at a time, written as the maths reads
//! (docs/science.md#model-family). Slow (it forms the `B×D` products) and easy to check; the fast path and
//! every backend are tested against it.
//!
//! Shapes: `x`, `y`, `out`: `B×F`; `u`, `s`: `B×D`; `pre`, `h`: `B×H`;
//! `W1`: `H×D`; `W2`: `D×H` (tied: `W1ᵀ`); `W_E`: `D×F`; `M`: `F×F`.
//!
//! Forward:  `u = x W_Eᵀ`, `pre = u W1ᵀ + b1`, `h = ReLU(pre)`, `s = h W2ᵀ + b2 + r·u`,
//! `z = s W_E + r·σ·x Mᵀ`, `out = act(z)`, `L = mean_{b,f} imp_f·ℓ(out − y)`.
//! Backward: `dz = act'(z)·imp·ℓ'(out − y)/(B·F)`, `ds = dz W_Eᵀ`, `dW2 = dsᵀ h`,
//! `db2 = Σ_b ds`, `dh = ds W2`, `dpre = dh ⊙ [pre > 0]`, `dW1 = dpreᵀ u`, `db1 = Σ_b dpre`;
//! tied: `dW1 += dW2ᵀ`.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::config::{LossName, OutAct};
use crate::layout::Param;
use crate::model::{Float, Model};

/// Loss, output and (optionally) gradient of one instance on one dense batch.
#[derive(Clone, Debug)]
pub struct RefResult<T> {
    pub loss: T,
    pub out: Array2<T>,
    /// Gradient in the instance's flat layout (empty when not asked for).
    pub grads: Vec<T>,
    /// The side of every kink the loss passed through: `pre > 0`, `z > 0` (ReLU output)
    /// and `sign(out − y)` (L1). A finite difference is only valid where these agree.
    pub signs: Vec<i8>,
}

fn signs_of<T: Float>(a: &Array2<T>) -> impl Iterator<Item = i8> + '_ {
    a.iter()
        .map(|&v| (v > T::zero()) as i8 - (v < T::zero()) as i8)
}

fn relu<T: Float>(a: &Array2<T>) -> Array2<T> {
    a.mapv(|v| if v > T::zero() { v } else { T::zero() })
}

/// Runs instance `k` of `model` on the dense `B×F` batch `x`.
pub fn forward_backward<T: Float>(
    model: &Model<T>,
    k: usize,
    x: ArrayView2<T>,
    with_grad: bool,
) -> RefResult<T> {
    let cfg = &model.cfg;
    let (f, h_dim, d) = (cfg.n_feat, cfg.n_hidden, cfg.d_in());
    let b = x.nrows();
    let r = T::from_f64(cfg.res_factor());
    let mat = |param: Param, rows: usize, cols: usize| -> Option<Array2<T>> {
        model
            .tensor(k, param)
            .map(|s| Array2::from_shape_vec((rows, cols), s.to_vec()).unwrap())
    };
    let vec1 = |param: Param| model.tensor(k, param).map(|s| Array1::from_vec(s.to_vec()));
    let w1 = mat(Param::W1, h_dim, d).expect("every model has W1");
    let w2 = mat(Param::W2, d, h_dim).unwrap_or_else(|| w1.t().to_owned());
    let (b1, b2) = (vec1(Param::B1), vec1(Param::B2));
    let emb = model
        .instance_embed(k)
        .map(|e| Array2::from_shape_vec((d, f), e.to_vec()).unwrap());

    // Forward.
    let u = match &emb {
        Some(e) => x.dot(&e.t()),
        None => x.to_owned(),
    };
    let mut pre = u.dot(&w1.t());
    if let Some(b1) = &b1 {
        pre += b1;
    }
    let h = relu(&pre);
    let mut s = h.dot(&w2.t());
    if let Some(b2) = &b2 {
        s += b2;
    }
    if cfg.variant.has_residual() {
        s.scaled_add(r, &u);
    }
    let mut z = match &emb {
        Some(e) => s.dot(e),
        None => s,
    };
    if let Some(m) = model.instance_mixing(k) {
        let m = Array2::from_shape_vec((f, f), m.to_vec()).unwrap();
        let sigma = T::from_f64(cfg.instance_sigma(k));
        z.scaled_add(r * sigma, &x.dot(&m.t()));
    }
    let out = match cfg.out_act {
        OutAct::Identity => z.clone(),
        OutAct::Relu => relu(&z),
    };
    let task = cfg.task();
    let y = x.mapv(|v| task.label(v));
    let err = &out - &y;
    let imp = Array1::from_vec(task.importance_as::<T>());
    let scale = T::one() / T::from_f64((b * f) as f64);
    let elem_loss = match cfg.loss {
        LossName::L2 => err.mapv(|e| e * e),
        LossName::L1 => err.mapv(|e| e.abs()),
    };
    let loss = (elem_loss * &imp).sum() * scale;
    let mut signs: Vec<i8> = signs_of(&pre).collect();
    if cfg.out_act == OutAct::Relu {
        signs.extend(signs_of(&z));
    }
    if cfg.loss == LossName::L1 {
        signs.extend(signs_of(&err));
    }
    if !with_grad {
        return RefResult {
            loss,
            out,
            grads: Vec::new(),
            signs,
        };
    }

    // Backward.
    let dl = match cfg.loss {
        LossName::L2 => err.mapv(|e| T::from_f64(2.0) * e),
        LossName::L1 => err.mapv(|e| {
            if e > T::zero() {
                T::one()
            } else if e < T::zero() {
                -T::one()
            } else {
                T::zero()
            }
        }),
    };
    let mut dz = dl * &imp * scale;
    if cfg.out_act == OutAct::Relu {
        dz.zip_mut_with(&z, |g, &zv| {
            if zv <= T::zero() {
                *g = T::zero()
            }
        });
    }
    let ds = match &emb {
        Some(e) => dz.dot(&e.t()),
        None => dz,
    };
    let dw2 = ds.t().dot(&h);
    let db2 = ds.sum_axis(Axis(0));
    let mut dpre = ds.dot(&w2);
    dpre.zip_mut_with(&pre, |g, &p| {
        if p <= T::zero() {
            *g = T::zero()
        }
    });
    let mut dw1 = dpre.t().dot(&u);
    let db1 = dpre.sum_axis(Axis(0));
    if cfg.tied {
        dw1 += &dw2.t();
    }
    let mut grads = vec![T::zero(); model.layout.len];
    for slot in &model.layout.slots {
        let src: Vec<T> = match slot.param {
            Param::W1 => dw1.iter().copied().collect(),
            Param::B1 => db1.to_vec(),
            Param::W2 => dw2.iter().copied().collect(),
            Param::B2 => db2.to_vec(),
        };
        grads[slot.offset..slot.offset + slot.len].copy_from_slice(&src);
    }
    RefResult {
        loss,
        out,
        grads,
        signs,
    }
}
