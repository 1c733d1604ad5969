//! The seed's intervention: fold the embedding of a trained `emb_res` model into its
//! weights and run them without the embedding, as a `res_mlp`:
//!
//! `W1' = W1·W_E` (`H×F`), `W2' = W_Eᵀ·W2` (`F×H`), `b1' = b1`, `b2' = W_Eᵀ·b2` (`F`),
//! in every block `l` of a deeper model alike.
//!
//! The transplant computes the same MLP on the same features; what it loses is the
//! residual noise `N x` (`W_EᵀW_E = I + N`), which becomes the clean `r·x`.
//!
//! Cross-block terms (`L > 1`). Block `l` of the original reads
//! `W1_l a_l = W1_l W_E x + Σ_{m<l} W1_l v_m` with `v_m = W2_m h_m + b2_m` in `R^D`; the
//! transplant's block reads `W1_l' a_l' = W1_l W_E x + Σ_{m<l} W1_l W_E W_Eᵀ v_m`. The
//! direct read of `x` is unchanged, but every channel from an earlier block to a later one
//! passes through `P = W_E W_Eᵀ` (`D×D`, rank `≤ F`): only the part of `v_m` inside the span
//! of the embedding survives (scaled by `P`'s eigenvalues `≈ 1 ± O(√(F/D))`), and any
//! cross-layer representation kept outside that span is cut.
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
    let (f, d) = (cfg.n_feat, cfg.d_emb);
    for (k, (l, h)) in (0..model.instances())
        .flat_map(|k| cfg.widths().into_iter().enumerate().map(move |lh| (k, lh)))
    {
        let e = model.instance_embed(k).expect("embedding variant");
        let w1 = model.block_tensor(k, l, Param::W1).expect("W1");
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
            out.block_tensor_mut(k, l, param)
                .expect("the transplanted model has the same tensors")
                .copy_from_slice(vals)
        };
        put(Param::W1, &w1p);
        if let Some(w2) = model.block_tensor(k, l, Param::W2) {
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
        if let Some(b1) = model.block_tensor(k, l, Param::B1) {
            put(Param::B1, b1);
        }
        if let Some(b2) = model.block_tensor(k, l, Param::B2) {
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

    /// Largest output difference between a model and its transplant on one batch.
    fn max_out_diff(cfg: &Config) -> f64 {
        let mut model = Model::<f32>::new(cfg).unwrap();
        for (i, w) in model.params.iter_mut().enumerate() {
            *w += 0.05 * ((i % 7) as f32 - 3.0);
        }
        let moved = transplant(&model).unwrap();
        let mut s = Sampler::<f32>::new(vec![rng(3, Stream::Data)], vec![0.5]);
        let mut b = HostBatch::default();
        s.sample(8, cfg.n_feat, &mut b);
        let x = b.dense_instance(0);
        let xv = ArrayView2::from_shape((8, cfg.n_feat), &x).unwrap();
        let a = forward_backward(&model, 0, xv, false).out;
        let t = forward_backward(&moved, 0, xv, false).out;
        a.iter()
            .zip(t.iter())
            .map(|(p, q)| (p - q).abs() as f64)
            .fold(0.0, f64::max)
    }

    /// Deep models: with a square orthogonal embedding `W_E W_Eᵀ = I`, so every block
    /// (and every cross-block channel) is transplanted exactly; with `D > F` the
    /// cross-block channels pass through the projection `W_E W_Eᵀ` and the outputs move,
    /// while a one-block model with the same embedding is still exact.
    #[test]
    fn deep_transplants_keep_the_blocks_and_project_the_cross_block_channels() {
        let deep = Config {
            variant: Variant::EmbResOrth,
            n_feat: 6,
            d_emb: 6,
            n_layers: 3,
            d_mlp: vec![2, 3, 2],
            bias1: true,
            instances: 1,
            ..Config::default()
        };
        assert!(max_out_diff(&deep) < 1e-5);
        let wide = Config {
            d_emb: 15,
            ..deep.clone()
        };
        assert!(max_out_diff(&wide) > 1e-3, "{}", max_out_diff(&wide));
        let one = Config {
            n_layers: 1,
            d_mlp: Vec::new(),
            n_hidden: 3,
            ..wide
        };
        assert!(max_out_diff(&one) < 1e-5);
    }

    /// The cross-block channel of the header, term by term, on a 2-block `emb_res` with
    /// `D > F` and biases: the transplant's block 1 reads `W1_1 (W_E x + P v_0) + b1_1` with
    /// `P = W_E W_Eᵀ`, while the source's (less its residual noise) reads `W1_1 (W_E x + v_0)
    /// + b1_1`; both outputs are `r·x + W_Eᵀ(v_0 + v_1)` with their own `v_1`.
    #[test]
    fn cross_block_reads_pass_through_the_embedding_projection() {
        use ndarray::Array2;
        let (f, d, r) = (5, 12, 0.6);
        let cfg = Config {
            variant: Variant::EmbRes,
            n_feat: f,
            d_emb: d,
            n_layers: 2,
            d_mlp: vec![3, 4],
            bias1: true,
            bias2: true,
            res_factor: Some(r),
            instances: 1,
            ..Config::default()
        };
        let mut model = Model::<f32>::new(&cfg).unwrap();
        for (i, w) in model.params.iter_mut().enumerate() {
            *w += 0.3 * ((i % 5) as f32 - 2.0);
        }
        let moved = transplant(&model).unwrap();
        let mat = |t: &[f32], rows: usize, cols: usize| {
            Array2::from_shape_vec((rows, cols), t.iter().map(|&v| v as f64).collect()).unwrap()
        };
        let e = mat(model.instance_embed(0).unwrap(), d, f);
        let block = |l: usize, h: usize| {
            let get = |p: Param| model.block_tensor(0, l, p).unwrap();
            let w1 = mat(get(Param::W1), h, d);
            let w2 = mat(get(Param::W2), d, h);
            let b1 = mat(get(Param::B1), h, 1).column(0).to_owned();
            let b2 = mat(get(Param::B2), d, 1).column(0).to_owned();
            move |a: &ndarray::Array1<f64>| w2.dot(&(w1.dot(a) + &b1).mapv(|v| v.max(0.0))) + &b2
        };
        let (block0, block1) = (block(0, 3), block(1, 4));
        let proj = e.dot(&e.t());
        let x = ndarray::Array1::from_vec(vec![0.7, -0.4, 0.0, 0.9, 0.2]);
        let u = e.dot(&x);
        let v0 = block0(&u);
        let through = |channel: &ndarray::Array1<f64>| {
            let v1 = block1(&(&u + channel));
            &x * r + e.t().dot(&(&v0 + &v1))
        };
        let want_moved = through(&proj.dot(&v0));
        let want_source = through(&v0);
        let xs = Array2::from_shape_vec((1, f), x.iter().map(|&v| v as f32).collect()).unwrap();
        let got_moved = forward_backward(&moved, 0, xs.view(), false).out;
        let source = forward_backward(&model, 0, xs.view(), false).out;
        let noise = (e.t().dot(&e) - Array2::<f64>::eye(f)).dot(&x) * r;
        for i in 0..f {
            assert!(
                (got_moved[[0, i]] as f64 - want_moved[i]).abs() < 1e-4,
                "feature {i}"
            );
            let clean = source[[0, i]] as f64 - noise[i];
            assert!((clean - want_source[i]).abs() < 1e-4, "feature {i}");
        }
        let moved_by_projection = (0..f)
            .map(|i| (want_moved[i] - want_source[i]).abs())
            .fold(0.0, f64::max);
        assert!(moved_by_projection > 1e-2, "{moved_by_projection}");
    }

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
