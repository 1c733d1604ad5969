//! The plain dense reference path, one instance at a time, written as the maths reads
//! (docs/science.md#model-family). Slow (it forms the `B×D` products) and easy to check; the
//! fast path and every backend are tested against it.
//!
//! Shapes: `x`, `y`, `out`: `B×F`; `u`, `a_l`, `v_l`, `s`: `B×D`; `pre_l`, `h_l`: `B×H_l`;
//! block `l`'s `W1`: `H_l×D`, `W2`: `D×H_l` (tied: `W1ᵀ`); `W_E`: `D×F`; `M`: `F×F`.
//!
//! Forward, blocks `l = 0 … L−1`:
//! `u = x W_Eᵀ`, `a_0 = u`; `pre_l = a_l W1_lᵀ + b1_l`, `h_l = act(pre_l)`,
//! `v_l = h_l W2_lᵀ + b2_l`, `a_{l+1} = a_l + v_l`; `s = Σ_l v_l + r·u` (residual variants;
//! without a residual `L = 1` and `s = v_0`); `z = s W_E + r·σ·x Mᵀ`, `out = out_act(z)`.
//! Loss, read-off space: `L = mean_{b,f} imp_f·ℓ(out − y)`; residual space:
//! `L = mean_{b,d} ℓ(s − y W_Eᵀ)` (importance 1, identity output).
//! Backward: `g = ∂L/∂s` (read-off: `dz = out_act'(z)·imp·ℓ'(out − y)/(B·F)`, `g = dz W_Eᵀ`;
//! residual: `g = ℓ'(s − y W_Eᵀ)/(B·D)`); a learned `σ` gets `∂L/∂σ = r·Σ_{b,f} dz ⊙ x Mᵀ`. Then for `l = L−1 … 0`, with `c_l = Σ_{m>l} dpre_m W1_m`
//! (what the later blocks' reads send back into the stream): `dv_l = g + c_l`,
//! `dW2_l = dv_lᵀ h_l`, `db2_l = Σ_b dv_l`, `dpre_l = (dv_l W2_l) ⊙ act'(pre_l)`,
//! `dW1_l = dpre_lᵀ a_l`, `db1_l = Σ_b dpre_l`; tied: `dW1_l += dW2_lᵀ`.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::config::{LossName, LossSpace};
use crate::layout::Param;
use crate::model::{Float, Model};

/// Loss, output and (optionally) gradient of one instance on one dense batch.
#[derive(Clone, Debug)]
pub struct RefResult<T> {
    pub loss: T,
    /// Each sample's loss (its row's mean over features or residual dimensions); `loss` is
    /// their mean.
    pub row_loss: Vec<T>,
    /// The read-off output `out` (`B×F`), whatever the loss space.
    pub out: Array2<T>,
    /// Gradient in the instance's flat layout (empty when not asked for).
    pub grads: Vec<T>,
    /// The side of every kink the loss passed through: `pre > 0` (ReLU hidden layers),
    /// `z > 0` (ReLU output) and `sign(err)` (L1). A finite difference is only valid where
    /// these agree.
    pub signs: Vec<i8>,
}

fn signs_of<T: Float>(a: &Array2<T>) -> impl Iterator<Item = i8> + '_ {
    a.iter()
        .map(|&v| (v > T::zero()) as i8 - (v < T::zero()) as i8)
}

/// One block's forward values.
struct BlockPass<T> {
    /// The stream the block reads, `a_l` (`B×D`).
    input: Array2<T>,
    pre: Array2<T>,
    h: Array2<T>,
    w1: Array2<T>,
    w2: Array2<T>,
}

/// Runs instance `k` of `model` on the dense `B×F` batch `x`.
pub fn forward_backward<T: Float>(
    model: &Model<T>,
    k: usize,
    x: ArrayView2<T>,
    with_grad: bool,
) -> RefResult<T> {
    let cfg = &model.cfg;
    let (f, d) = (cfg.n_feat, cfg.d_in());
    let b = x.nrows();
    let r = T::from_f64(cfg.res_factor());
    let task = cfg.task();
    let act = task.act;
    let widths = cfg.widths();
    let emb = model
        .instance_embed(k)
        .map(|e| Array2::from_shape_vec((d, f), e.to_vec()).unwrap());

    // Forward.
    let u = match &emb {
        Some(e) => x.dot(&e.t()),
        None => x.to_owned(),
    };
    let mut blocks: Vec<BlockPass<T>> = Vec::with_capacity(widths.len());
    let mut s: Option<Array2<T>> = None;
    for (l, &hl) in widths.iter().enumerate() {
        let mat = |param: Param, rows: usize, cols: usize| -> Option<Array2<T>> {
            model
                .block_tensor(k, l, param)
                .map(|t| Array2::from_shape_vec((rows, cols), t.to_vec()).unwrap())
        };
        let w1 = mat(Param::W1, hl, d).expect("every block has W1");
        let w2 = mat(Param::W2, d, hl).unwrap_or_else(|| w1.t().to_owned());
        // a_l = u + Σ_{m<l} v_m: the stream so far (s holds Σ v before the residual is added).
        let input = match &s {
            None => u.clone(),
            Some(sum) => &u + sum,
        };
        let mut pre = input.dot(&w1.t());
        if let Some(b1) = model.block_tensor(k, l, Param::B1) {
            pre += &Array1::from_vec(b1.to_vec());
        }
        let h = pre.mapv(|v| act.apply(v));
        let mut v = h.dot(&w2.t());
        if let Some(b2) = model.block_tensor(k, l, Param::B2) {
            v += &Array1::from_vec(b2.to_vec());
        }
        s = Some(match s {
            None => v,
            Some(sum) => sum + &v,
        });
        blocks.push(BlockPass {
            input,
            pre,
            h,
            w1,
            w2,
        });
    }
    let mut s = s.expect("at least one block");
    if cfg.variant.has_residual() {
        s.scaled_add(r, &u);
    }
    let mut z = match &emb {
        Some(e) => s.dot(e),
        None => s.clone(),
    };
    // x Mᵀ, kept for ∂L/∂σ.
    let xm = model.instance_mixing(k).map(|m| {
        let m = Array2::from_shape_vec((f, f), m.to_vec()).unwrap();
        x.dot(&m.t())
    });
    if let Some(xm) = &xm {
        z.scaled_add(r * T::from_f64(model.sigma(k)), xm);
    }
    let out_act = cfg.out_activation();
    let out = match out_act {
        None => z.clone(),
        Some(a) => z.mapv(|v| a.apply(v)),
    };
    let y = Array2::from_shape_fn((b, f), |(i, j)| task.label(j, x[[i, j]]));
    // The error in the loss's space, and the weight of each of its columns.
    let (err, col_weight) = match task.space {
        LossSpace::Readoff => (&out - &y, Array1::from_vec(task.importance_as::<T>())),
        LossSpace::Resid => {
            let target = match &emb {
                Some(e) => y.dot(&e.t()),
                None => y.clone(),
            };
            (&s - &target, Array1::from_elem(d, T::one()))
        }
    };
    let scale = T::one() / T::from_f64(err.len() as f64);
    let elem_loss = match cfg.loss {
        LossName::L2 => err.mapv(|e| e * e),
        LossName::L1 => err.mapv(|e| e.abs()),
    };
    let weighted = elem_loss * &col_weight;
    let loss = weighted.sum() * scale;
    let per_row = T::one() / T::from_f64(err.ncols() as f64);
    let row_loss = weighted
        .sum_axis(Axis(1))
        .iter()
        .map(|&v| v * per_row)
        .collect();
    let mut signs: Vec<i8> = Vec::new();
    if act.has_kink() {
        for bp in &blocks {
            signs.extend(signs_of(&bp.pre));
        }
    }
    if out_act.is_some_and(|a| a.has_kink()) && task.space == LossSpace::Readoff {
        signs.extend(signs_of(&z));
    }
    if cfg.loss == LossName::L1 {
        signs.extend(signs_of(&err));
    }
    if !with_grad {
        return RefResult {
            loss,
            row_loss,
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
    let derr = dl * &col_weight * scale;
    let mut grads = vec![T::zero(); model.layout.len];
    let g = match task.space {
        LossSpace::Resid => derr,
        LossSpace::Readoff => {
            let mut dz = derr;
            if let Some(a) = out_act {
                dz.zip_mut_with(&z, |gv, &zv| *gv = *gv * a.derivative(zv));
            }
            if let (Some(slot), Some(xm)) = (model.layout.get(Param::Sigma), &xm) {
                grads[slot.offset] = r * (&dz * xm).sum();
            }
            match &emb {
                Some(e) => dz.dot(&e.t()),
                None => dz,
            }
        }
    };
    let mut carry: Option<Array2<T>> = None;
    for (l, bp) in blocks.iter().enumerate().rev() {
        let dv = match &carry {
            None => g.clone(),
            Some(c) => &g + c,
        };
        let dw2 = dv.t().dot(&bp.h);
        let db2 = dv.sum_axis(Axis(0));
        let mut dpre = dv.dot(&bp.w2);
        dpre.zip_mut_with(&bp.pre, |gv, &p| *gv = *gv * act.derivative(p));
        let mut dw1 = dpre.t().dot(&bp.input);
        let db1 = dpre.sum_axis(Axis(0));
        if cfg.tied {
            dw1 += &dw2.t();
        }
        if l > 0 {
            let back = dpre.dot(&bp.w1);
            carry = Some(match carry {
                None => back,
                Some(c) => c + &back,
            });
        }
        for slot in model.layout.slots.iter().filter(|s| s.block == l) {
            let src: Vec<T> = match slot.param {
                Param::W1 => dw1.iter().copied().collect(),
                Param::B1 => db1.to_vec(),
                Param::W2 => dw2.iter().copied().collect(),
                Param::B2 => db2.to_vec(),
                Param::Sigma => continue, // set with dz above
            };
            grads[slot.offset..slot.offset + slot.len].copy_from_slice(&src);
        }
    }
    RefResult {
        loss,
        row_loss,
        out,
        grads,
        signs,
    }
}
