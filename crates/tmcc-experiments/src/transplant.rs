//! The seed's intervention: fold the embedding of a trained `emb_res` model into its
//! weights and run them without the embedding, as a `res_mlp`:
//!
//! `W1' = W1·W_E` (`H×F`), `W2' = W_Eᵀ·W2` (`F×H`), `b1' = b1`, `b2' = W_Eᵀ·b2` (`F`).
//!
//! The transplant computes the same MLP on the same features; what it loses is the
//! residual noise `N x` (`W_EᵀW_E = I + N`), which becomes the clean `r·x`.

use tmcc_model::config::Variant;
use tmcc_model::{Config, Error, Model};

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
        let w1 = model.tensor(k, "W1").expect("W1");
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
        let p_len = out.layout.len;
        let dst = &mut out.params[k * p_len..(k + 1) * p_len];
        let put = |dst: &mut [f32], name: &str, vals: &[f32], layout: &tmcc_model::layout::Layout| {
            let s = layout.get(name).expect("tensor in layout");
            dst[s.offset..s.offset + s.len].copy_from_slice(vals);
        };
        put(dst, "W1", &w1p, &out.layout);
        if let Some(w2) = model.tensor(k, "W2") {
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
            put(dst, "W2", &w2p, &out.layout);
        }
        if let Some(b1) = model.tensor(k, "b1") {
            put(dst, "b1", b1, &out.layout);
        }
        if let Some(b2) = model.tensor(k, "b2") {
            let b2p: Vec<f32> = (0..f)
                .map(|c| (0..d).map(|j| e[j * f + c] * b2[j]).sum())
                .collect();
            put(dst, "b2", &b2p, &out.layout);
        }
    }
    Ok(out)
}
