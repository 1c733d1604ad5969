//! The seed's intervention: fold the embedding of a trained `emb_res` model into its
//! weights and run them without the embedding, as a `res_mlp`:
//!
//! `W1' = W1·W_E` (`H×F`), `W2' = W_Eᵀ·W2` (`F×H`), `b1' = b1`, `b2' = W_Eᵀ·b2` (`F`).
//!
//! The transplant computes the same MLP on the same features; what it loses is the
//! residual noise `N x` (`W_EᵀW_E = I + N`), which becomes the clean `r·x`.

use tmcc_model::config::Variant;
use tmcc_model::{Config, Error, Model, Param};

/// The `res_mlp` (or `mlp` for `emb_mlp`) that `model`'s weights become without the
/// embedding; every instance is transplanted.
pub fn transplant(model: &Model<f32>) -> Result<Model<f32>, Error> {
    let cfg = &model.cfg;
    let target = match cfg.variant {
        Variant::EmbRes | Variant::EmbResOrth => Variant::ResMlp,
        Variant::EmbMlp => Variant::Mlp,
        v => {
            return Err(Error::Shape(format!(
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
