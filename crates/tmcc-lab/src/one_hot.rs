//! APD's one-hot output, and how much of it each path of the network carries.
//!
//! For every feature `i`, the input `x = e_i` (one feature active, at value 1):
//!
//! - `out_i`: the model's read-off output at feature `i` (APD reports ≈ 1.6 at `e_42` for
//!   its 1-layer target, against a label of 2.0);
//! - `label_i = act(c_i) + r`: the label there ([`tmcc_model::task`]);
//! - the split of the read-off *before* the output activation, `z_i = skip_i + Σ_l block_{l,i}`
//!   (`z_i = out_i` with the identity output, APD's targets):
//!   `skip_i = R_ii`, the residual table's diagonal (`r·|W_E e_i|² = r` for unit-norm
//!   embedding columns, `r·(1 + σM_ii)` for `mix`, 0 without a residual), and
//!   `block_{l,i} = (W_Eᵀ v_l)_i`, what block `l` writes into the stream, read off at `i`.
//!
//! Block `l` reads `a_l = W_E x + Σ_{m<l} v_m`, so its output depends on the blocks before
//! it only: the model cut after block `l` (blocks `0..=l`, same weights, identity output)
//! reads off `z^{(l)} = skip + Σ_{m≤l} block_m`, and `block_l = z^{(l)} − z^{(l−1)}`
//! (`z^{(−1)} = skip`). Every pass is the dense reference path ([`forward_backward`]) on
//! the `F×F` batch of the `F` one-hot inputs, for models of any depth. Shapes: the result
//! is `[instance][feature]`, each with one entry per block.

use ndarray::Array2;
use serde::Serialize;
use tmcc_model::config::OutAct;
use tmcc_model::reference::forward_backward;
use tmcc_model::{Config, Model, Param};

use crate::Error;

/// One feature's one-hot output and its split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OneHot {
    pub feature: usize,
    /// `out_i` at `x = e_i`.
    pub out: f64,
    /// `act(c_i) + r`.
    pub label: f64,
    /// The residual (skip) path's share of `z_i`: `R_ii`.
    pub skip: f64,
    /// Block `l`'s share of `z_i`, one per block.
    pub blocks: Vec<f64>,
}

/// The one-hot output of every feature of every instance of `model`
/// (`[instance][feature]`).
pub fn one_hot(model: &Model<f32>) -> Result<Vec<Vec<OneHot>>, Error> {
    let cfg = &model.cfg;
    let (f, n_blocks) = (cfg.n_feat, cfg.n_layers);
    let task = cfg.task();
    let eye = Array2::<f32>::eye(f);
    // z^{(l)} of every instance: [l][instance] → F×F read-offs (row = active feature).
    let cut_readoffs: Vec<Vec<Array2<f32>>> = (1..=n_blocks)
        .map(|blocks| {
            let cut = cut_after(model, blocks)?;
            Ok((0..model.instances())
                .map(|k| forward_backward(&cut, k, eye.view(), false).out)
                .collect())
        })
        .collect::<Result<_, Error>>()?;
    Ok((0..model.instances())
        .map(|k| {
            let full = forward_backward(model, k, eye.view(), false).out;
            let table = model.residual_table(k);
            (0..f)
                .map(|i| {
                    let skip = table.as_ref().map_or(0.0, |t| t[i * f + i] as f64);
                    let mut before = skip;
                    let blocks = cut_readoffs
                        .iter()
                        .map(|z| {
                            let now = z[k][[i, i]] as f64;
                            let share = now - before;
                            before = now;
                            share
                        })
                        .collect();
                    OneHot {
                        feature: i,
                        out: full[[i, i]] as f64,
                        label: task.label(i, 1.0f64),
                        skip,
                        blocks,
                    }
                })
                .collect()
        })
        .collect())
}

/// `model` cut after its first `blocks` blocks, with the identity output: the same
/// embedding, mixing and weights of those blocks.
fn cut_after(model: &Model<f32>, blocks: usize) -> Result<Model<f32>, Error> {
    let widths = model.cfg.widths();
    // One block is written with its width as `n_hidden` and no `d_mlp` (Config::validate).
    let (n_hidden, d_mlp) = match blocks {
        1 => (widths[0], Vec::new()),
        _ => (model.cfg.n_hidden, widths[..blocks].to_vec()),
    };
    let cfg = Config {
        n_layers: blocks,
        n_hidden,
        d_mlp,
        out_act: OutAct::Identity,
        ..model.cfg.clone()
    };
    let mut cut = Model::<f32>::new(&cfg)?;
    cut.embed.clone_from(&model.embed);
    cut.mixing.clone_from(&model.mixing);
    for k in 0..model.instances() {
        for l in 0..blocks {
            for param in [Param::W1, Param::B1, Param::W2, Param::B2] {
                if let Some(src) = model.block_tensor(k, l, param) {
                    cut.block_tensor_mut(k, l, param)
                        .expect("the cut model has the blocks' tensors")
                        .copy_from_slice(src);
                }
            }
        }
    }
    Ok(cut)
}

/// A summary of one instance's one-hot outputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OneHotSummary {
    /// Means over features of `out_i`, `label_i`, `skip_i` and each block's share.
    pub mean_out: f64,
    pub mean_label: f64,
    pub mean_skip: f64,
    pub mean_blocks: Vec<f64>,
}

impl OneHotSummary {
    pub fn of(features: &[OneHot]) -> Self {
        let n = features.len().max(1) as f64;
        let mean = |g: &dyn Fn(&OneHot) -> f64| features.iter().map(g).sum::<f64>() / n;
        let n_blocks = features.first().map_or(0, |f| f.blocks.len());
        Self {
            mean_out: mean(&|o| o.out),
            mean_label: mean(&|o| o.label),
            mean_skip: mean(&|o| o.skip),
            mean_blocks: (0..n_blocks).map(|l| mean(&|o| o.blocks[l])).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmcc_model::act::Act;
    use tmcc_model::config::Variant;

    /// A hand-built `res_mlp` of two blocks without embedding (`D = F = 3`, `r = 0.5`):
    /// block 0 has one neuron reading and writing feature 0 with weight 1 and 2
    /// (`v_0 = 2·ReLU(x_0)·e_0`); block 1 one neuron reading feature 0 (weight 1) and
    /// writing 3 onto feature 1. At `x = e_0`: skip 0.5, block 0 gives 2 on feature 0,
    /// block 1 reads `a_1 = e_0 + 2e_0` and writes `3·3 = 9` on feature 1 only.
    #[test]
    fn splits_a_hand_built_two_block_model_exactly() {
        let cfg = Config {
            variant: Variant::ResMlp,
            n_feat: 3,
            n_layers: 2,
            d_mlp: vec![1, 1],
            res_factor: Some(0.5),
            bias1: false,
            bias2: false,
            act: Act::Relu,
            instances: 1,
            ..Config::default()
        };
        let mut model = Model::<f32>::new(&cfg).unwrap();
        let mut put = |l: usize, p: Param, v: &[f32]| {
            model.block_tensor_mut(0, l, p).unwrap().copy_from_slice(v)
        };
        put(0, Param::W1, &[1.0, 0.0, 0.0]);
        put(0, Param::W2, &[2.0, 0.0, 0.0]);
        put(1, Param::W1, &[1.0, 0.0, 0.0]);
        put(1, Param::W2, &[0.0, 3.0, 0.0]);
        let got = one_hot(&model).unwrap();
        let e0 = &got[0][0];
        assert_eq!(e0.out, 2.5);
        assert_eq!(e0.label, 1.5);
        assert_eq!(e0.skip, 0.5);
        assert_eq!(e0.blocks, vec![2.0, 0.0]);
        // Feature 1 alone: no neuron reads it; only the skip path carries it.
        let e1 = &got[0][1];
        assert_eq!((e1.out, e1.skip), (0.5, 0.5));
        assert_eq!(e1.blocks, vec![0.0, 0.0]);
        let s = OneHotSummary::of(&got[0]);
        assert!((s.mean_out - 3.5 / 3.0).abs() < 1e-12);
        assert!((s.mean_blocks[0] - 2.0 / 3.0).abs() < 1e-12);
    }

    /// On a random deep embedded model the split adds up to the output (identity output),
    /// and the skip share is `r` (unit-norm embedding columns).
    #[test]
    fn the_split_adds_up_to_the_output_at_any_depth() {
        let cfg = Config {
            variant: Variant::EmbRes,
            n_feat: 7,
            d_emb: 20,
            n_layers: 3,
            d_mlp: vec![3, 2, 4],
            bias1: true,
            bias2: true,
            res_factor: Some(0.8),
            instances: 2,
            ..Config::default()
        };
        let mut model = Model::<f32>::new(&cfg).unwrap();
        for (i, w) in model.params.iter_mut().enumerate() {
            *w += 0.2 * ((i % 7) as f32 - 3.0);
        }
        for inst in one_hot(&model).unwrap() {
            for o in inst {
                let total = o.skip + o.blocks.iter().sum::<f64>();
                assert!((total - o.out).abs() < 1e-5, "{o:?}");
                assert!((o.skip - 0.8).abs() < 1e-5, "{o:?}");
                assert!(o.blocks.iter().all(|b| b.abs() > 1e-6), "{o:?}");
            }
        }
    }
}
