//! The seed's intervention: fold the embedding of a trained `emb_res` model into its
//! weights and run them without the embedding, as a `res_mlp`:
//!
//! `W1' = W1·W_E` (`H×F`), `W2' = W_Eᵀ·W2` (`F×H`), `b1' = b1`, `b2' = W_Eᵀ·b2` (`F`).
//!
//! The transplant computes the same MLP on the same features; what it loses is the
//! residual noise `N x` (`W_EᵀW_E = I + N`), which becomes the clean `r·x`.
//! [`Comparison`] evaluates a model and its transplant on the same evaluation samples
//! (`tmcc transplant`, which writes it as `transplant.json`).

use std::path::Path;

use serde::Serialize;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::config::Variant;
use tmcc_model::eval::InstanceEval;
use tmcc_model::{Config, Model, Param};

use crate::rundir::{checkpoint_path, RunDir};
use crate::runner::{eval_model, Device};
use crate::Error;

/// The `res_mlp` (or `mlp` for `emb_mlp`) that `model`'s weights become without the
/// embedding; every instance is transplanted.
pub fn transplant(model: &Model<f32>) -> Result<Model<f32>, tmcc_model::Error> {
    let cfg = &model.cfg;
    let target = match cfg.variant {
        Variant::EmbRes | Variant::EmbResOrth => Variant::ResMlp,
        Variant::EmbMlp => Variant::Mlp,
        v => {
            return Err(tmcc_model::Error::Shape(format!(
                "transplant needs an embedding variant, got `{}`",
                v.name()
            )))
        }
    };
    let new_cfg = Config {
        variant: target,
        res_factor: Some(cfg.res_factor()),
        ..cfg.clone()
    };
    let mut out = Model::<f32>::new(&new_cfg)?;
    let (f, h, d) = (cfg.n_feat, cfg.n_hidden, cfg.d_emb);
    for k in 0..model.instances() {
        let e = model.instance_embed(k).expect("embedding variant");
        let w1 = model.tensor(k, Param::W1).expect("W1");
        // W1' (H×F) = W1 (H×D) · W_E (D×F)
        let mut w1p = vec![0.0f32; h * f];
        for i in 0..h {
            for j in 0..d {
                let a = w1[i * d + j];
                for c in 0..f {
                    w1p[i * f + c] += a * e[j * f + c];
                }
            }
        }
        let mut put = |param: Param, vals: &[f32]| {
            out.tensor_mut(k, param)
                .expect("the transplanted model has the same tensors")
                .copy_from_slice(vals)
        };
        put(Param::W1, &w1p);
        if let Some(w2) = model.tensor(k, Param::W2) {
            // W2' (F×H) = W_Eᵀ (F×D) · W2 (D×H)
            let mut w2p = vec![0.0f32; f * h];
            for j in 0..d {
                for c in 0..f {
                    let a = e[j * f + c];
                    for i in 0..h {
                        w2p[c * h + i] += a * w2[j * h + i];
                    }
                }
            }
            put(Param::W2, &w2p);
        }
        if let Some(b1) = model.tensor(k, Param::B1) {
            put(Param::B1, b1);
        }
        if let Some(b2) = model.tensor(k, Param::B2) {
            let b2p: Vec<f32> = (0..f)
                .map(|c| (0..d).map(|j| e[j * f + c] * b2[j]).sum())
                .collect();
            put(Param::B2, &b2p);
        }
    }
    Ok(out)
}

/// The file of a [`Comparison`] in the transplant's run directory.
pub const TRANSPLANT_JSON: &str = "transplant.json";

/// One instance, before and after the transplant.
#[derive(Clone, Debug, Serialize)]
pub struct Pair {
    pub instance: usize,
    pub seed: u64,
    pub p: f64,
    pub original: InstanceEval,
    pub transplant: InstanceEval,
    /// `loss/naive + 2·SE < 1` for the transplant.
    pub transplant_beats_naive: bool,
}

/// A model and its transplant, evaluated on the same samples (`transplant.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The checkpoint file the model came from.
    pub source: String,
    pub source_variant: String,
    pub target_variant: String,
    pub res_factor: f64,
    pub source_step: u64,
    pub samples: usize,
    pub eval_seed: u64,
    pub rule: &'static str,
    pub instances: Vec<Pair>,
}

impl Comparison {
    /// Evaluates `source` (loaded from `source_path`, a checkpoint file or a run directory)
    /// and its transplant `moved` on `device`, both at each instance's training p on
    /// `samples` samples of the stream of `eval_seed`: the same samples.
    pub fn new(
        device: &Device,
        source: &Checkpoint<f32>,
        source_path: &Path,
        moved: &Model<f32>,
        samples: usize,
    ) -> Result<Self, Error> {
        let cfg = &source.model.cfg;
        let before = eval_model(device, &source.model, samples, None)?;
        let after = eval_model(device, moved, samples, None)?;
        Ok(Self {
            source: checkpoint_path(source_path).display().to_string(),
            source_variant: cfg.variant.name().into(),
            target_variant: moved.cfg.variant.name().into(),
            res_factor: cfg.res_factor(),
            source_step: source.step,
            samples,
            eval_seed: cfg.eval_seed,
            rule: "W1' = W1·W_E, W2' = W_Eᵀ·W2, b1' = b1, b2' = W_Eᵀ·b2; both evaluated on the \
                   same stream; the transplant beats naive if loss/naive + 2·SE < 1",
            instances: before
                .into_iter()
                .zip(after)
                .map(|(o, t)| Pair {
                    instance: o.instance,
                    seed: cfg.instance_seed(o.instance),
                    p: o.p,
                    transplant_beats_naive: t.ratio + 2.0 * t.ratio_se < 1.0,
                    original: o,
                    transplant: t,
                })
                .collect(),
        })
    }

    /// Writes the transplanted model `moved` into `dir` (`config.toml` and a checkpoint of
    /// step 0 with no optimizer state) and this comparison (`transplant.json`).
    pub fn write(&self, dir: &RunDir, moved: &Model<f32>) -> Result<(), Error> {
        dir.write_config(&moved.cfg)?;
        dir.write_checkpoint(&Checkpoint {
            model: moved.clone(),
            step: 0,
            moments: None,
            stream_positions: None,
        })?;
        dir.write_json(TRANSPLANT_JSON, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayView2;
    use tmcc_model::batch::{HostBatch, Sampler};
    use tmcc_model::init::{gram, rng, Stream};
    use tmcc_model::reference::forward_backward;

    /// The transplant differs from its source exactly by the residual noise `r·N·x`.
    #[test]
    fn transplant_removes_exactly_the_residual_noise() {
        for tied in [false, true] {
            let cfg = Config {
                variant: Variant::EmbRes,
                n_feat: 9,
                n_hidden: 4,
                d_emb: 20,
                p: 0.4,
                bias1: true,
                bias2: true,
                tied,
                res_factor: Some(0.7),
                batch_size: 16,
                instances: 2,
                ..Config::default()
            };
            let mut model = Model::<f32>::new(&cfg).unwrap();
            for (i, w) in model.params.iter_mut().enumerate() {
                *w += 0.01 * ((i % 7) as f32 - 3.0);
            }
            let moved = transplant(&model).unwrap();
            let mut s = Sampler::<f32>::new(vec![rng(3, Stream::Data); 2], vec![0.4; 2]);
            let mut b = HostBatch::default();
            s.sample(16, 9, &mut b);
            for k in 0..2 {
                let x = b.dense_instance(k);
                let xv = ArrayView2::from_shape((16, 9), &x).unwrap();
                let a = forward_backward(&model, k, xv, false).out;
                let t = forward_backward(&moved, k, xv, false).out;
                let e: Vec<f64> = model
                    .instance_embed(k)
                    .unwrap()
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let g = gram(&e, 20, 9);
                for row in 0..16 {
                    for i in 0..9 {
                        let noise: f64 = (0..9)
                            .filter(|&j| j != i)
                            .map(|j| 0.7 * g[i * 9 + j] * x[row * 9 + j] as f64)
                            .sum::<f64>()
                            + 0.7 * (g[i * 9 + i] - 1.0) * x[row * 9 + i] as f64;
                        let diff = (a[[row, i]] - t[[row, i]]) as f64;
                        assert!(
                            (diff - noise).abs() < 1e-5,
                            "tied={tied} row {row} feature {i}: {diff} vs {noise}"
                        );
                    }
                }
            }
        }
    }
}
