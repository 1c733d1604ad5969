//! The naive solution built explicitly: each of the `H` neurons computes one feature
//! exactly, the other `F − H` features get no output beyond the residual.
//!
//! Without an embedding: `W1 = [I | 0]` (`H×F`, neuron `i` reads feature `c_i`) and
//! `W2 = [I ; 0]` (`F×H`). With an embedding `W_E` (`D×F`, Gram matrix `G = W_EᵀW_E`) the
//! neurons must read `x` back out of `u = W_E x` and write their output so that
//! `W_Eᵀ` reads it as one feature: with `P = W_E G⁻¹` (`D×F`, so `W_EᵀP = I`),
//!
//! `W1 = [I | 0]·Pᵀ = [I | 0]·G⁻¹W_Eᵀ` (`H×D`) and `W2 = P·[I ; 0] = W_E G⁻¹[I ; 0]` (`D×H`),
//!
//! so `W1 W_E = [I | 0]` and `W_EᵀW2 = [I ; 0]`: the MLP's output in feature space is
//! `ReLU(x_c)` on the computed features `c` and 0 elsewhere, exactly. Its loss is then the
//! naive loss (L2 or L1) for `emb_mlp`, `mlp` and `emb_res_orth`; `emb_res` keeps its
//! residual noise `r·N x` on top. The computed features are the `H` most important
//! (ties: the lowest index first), as in the naive loss. Biases are 0; `G` is inverted by
//! Cholesky in f64.

use tmcc_model::{Config, Model, Param};

use crate::Error;

/// The features the naive solution computes: the `n_hidden` most important.
pub fn computed_features(cfg: &Config) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cfg.n_feat).collect();
    order.sort_by(|&a, &b| cfg.importance_of(b).total_cmp(&cfg.importance_of(a)));
    order.truncate(cfg.n_hidden.min(cfg.n_feat));
    order
}

/// The inverse of the symmetric positive definite `n×n` matrix `g` (row-major).
fn spd_inverse(g: &[f64], n: usize) -> Result<Vec<f64>, Error> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s = g[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return Err(Error::Other(
                        "the embedding's Gram matrix is singular (d_emb < n_feat?)".into(),
                    ));
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut inv = vec![0.0; n * n];
    for c in 0..n {
        // L y = e_c, then Lᵀ x = y; x is column c of G⁻¹.
        let mut y = vec![0.0; n];
        for i in 0..n {
            let rhs = if i == c { 1.0 } else { 0.0 };
            y[i] = (rhs - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let x = (y[i]
                - (i + 1..n)
                    .map(|k| l[k * n + i] * inv[k * n + c])
                    .sum::<f64>())
                / l[i * n + i];
            inv[i * n + c] = x;
        }
    }
    Ok(inv)
}

/// The naive solution of every instance of `cfg` (same embeddings as a model trained
/// from `cfg`, since both are drawn from the instance seeds).
pub fn naive_solution(cfg: &Config) -> Result<Model<f32>, Error> {
    let mut model = Model::<f32>::new(cfg)?;
    let (f, h, d) = (cfg.n_feat, cfg.n_hidden, cfg.d_in());
    let features = computed_features(cfg);
    for k in 0..cfg.instances {
        // Column c of P (D×F): how feature c is read from, and written to, the input space.
        let p: Vec<f64> = match model.instance_embed(k) {
            Some(e) => {
                let e: Vec<f64> = e.iter().map(|&v| v as f64).collect();
                let g_inv = spd_inverse(&tmcc_model::init::gram(&e, d, f), f)?;
                let mut p = vec![0.0; d * f];
                for j in 0..d {
                    for c in 0..f {
                        p[j * f + c] = (0..f).map(|m| e[j * f + m] * g_inv[m * f + c]).sum();
                    }
                }
                p
            }
            None => (0..d * f)
                .map(|i| if i / f == i % f { 1.0 } else { 0.0 })
                .collect(),
        };
        let mut w1 = vec![0.0f32; h * d];
        let mut w2 = vec![0.0f32; d * h];
        for (i, &c) in features.iter().enumerate() {
            for j in 0..d {
                w1[i * d + j] = p[j * f + c] as f32;
                w2[j * h + i] = p[j * f + c] as f32;
            }
        }
        for param in Param::ALL {
            if let Some(t) = model.tensor_mut(k, param) {
                match param {
                    Param::W1 => t.copy_from_slice(&w1),
                    Param::W2 => t.copy_from_slice(&w2),
                    Param::B1 | Param::B2 => t.fill(0.0),
                    Param::Sigma => {} // a learned σ keeps the config's
                }
            }
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{response, Counts};
    use crate::runner::{eval_model, Device};
    use tmcc_model::config::LossName;
    use tmcc_model::Variant;

    /// For `emb_mlp` and `mlp` the naive solution's L1 and L2 losses are the naive losses
    /// within 3 SE of the evaluation, and it computes exactly `n_hidden` features.
    #[test]
    fn naive_solution_has_the_naive_loss_and_computes_n_hidden_features() {
        for variant in [Variant::EmbMlp, Variant::Mlp] {
            for loss in [LossName::L1, LossName::L2] {
                let cfg = Config {
                    variant,
                    n_feat: 40,
                    n_hidden: 15,
                    d_emb: 200,
                    p: 0.05,
                    loss,
                    instances: 2,
                    eval_samples: 100_000,
                    ..Config::default()
                };
                let model = naive_solution(&cfg).unwrap();
                for e in eval_model(&Device::Cpu, &model, cfg.eval_samples, None).unwrap() {
                    assert!(
                        (e.ratio - 1.0).abs() < 3.0 * e.ratio_se + 1e-4,
                        "{variant:?} {loss:?}: {} ± {}",
                        e.ratio,
                        e.ratio_se
                    );
                }
                for feats in response(&Device::Cpu, &model, 41).unwrap() {
                    let c = Counts::of(&feats);
                    assert_eq!((c.computed, c.zero, c.partial), (15, 25, 0), "{variant:?}");
                }
            }
        }
    }

    #[test]
    fn the_inverse_inverts() {
        let g = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let inv = spd_inverse(&g, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| g[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }
}
