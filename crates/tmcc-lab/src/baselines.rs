//! Baselines of the `mix` model built without training (the follow-up paper's): weights
//! written down from the mixing matrix alone, then evaluated by the same evaluation code
//! as the trained models.
//!
//! **Sign.** tmcc's `mix` residual is `r·(I + σM)·x` and its labels are `ReLU(x) + r·x`, so
//! the MLP `W2·ReLU(W1·x)` must produce `ReLU(x) − rσM·x = ReLU(x) + M_eff·x` with
//! `M_eff = −rσM` — the paper's `M` (it writes `y = ReLU(x) + M·x`). On a positive input
//! the MLP's target is `A·x` with `A = I + M_eff = I − rσM`: [`target_matrix`]. Every
//! factorised baseline factors this `A` (the paper's `I + M`).
//!
//! - *naive*: neuron `j < H` reads and writes feature `j` (`W1 = W2ᵀ = [I_H 0]`): the first
//!   `H` ReLUs exact, the others 0, the mixing term not attempted.
//! - *naive + offset*: as naive with a constant output `b2_i` on the uncomputed features.
//!   The best constant under L2 is the mean of what is missing there, `E[ReLU(x_i) +
//!   (M_eff·x)_i] = p·E[ReLU(u)] = p/4` (the mixing term has mean 0); computed features
//!   keep offset 0 (their error is the mixing term, mean 0). It depends on `p`.
//! - *SVD*: the top `H` singular triples of `A = U·S·Vᵀ`: `W1 = V_Hᵀ`, `W2 = U_H·S_H`. Each
//!   pair `(u_j, v_j)` is only defined up to a common sign, which matters under the ReLU:
//!   we pick the sign whose `v_j` has the larger positive part (`‖v₊‖ ≥ ‖v₋‖`).
//! - *SNMF* (semi-non-negative matrix factorisation): `A ≈ W_out·W_in` with `W_in ≥ 0`
//!   (`H×F`), `W_out` free (`F×H`), minimising `‖A − W_out·W_in‖_F`. Alternating: `W_out`
//!   by least squares (`W_out = A·W_inᵀ·(W_in·W_inᵀ + εI)⁻¹`, exact for fixed `W_in`), then
//!   `inner` projected gradient steps on `W_in` (`W_in ← max(0, W_in − ∇/L)`, `L` the top
//!   eigenvalue of `W_outᵀW_out` by power iteration, doubled whenever a step would increase
//!   the error). Both steps are descent steps, so the error never increases. It starts from
//!   the naive `W_in = [I_H 0]`: for symmetric Gaussian M at σ ∈ {0.01, 0.03, 0.08} and the
//!   embedding-like M this start ended below a random non-negative one every time, and
//!   after 100 iterations within 2% of the unconstrained rank-`H` optimum (the SVD's).
//!   The MLP is `W1 = W_in`, `W2 = W_out`: since `W_in ≥ 0`, `ReLU(W_in·x) = W_in·x` for `x ≥ 0`, so on
//!   positive inputs the MLP outputs `W_out·W_in·x ≈ A·x`, the target.

use tmcc_model::{Config, Model, Param};

use crate::eigen::{frobenius, matmul, solve_spd, svd, transpose};
use crate::Error;

/// `A = I − r·σ·M` (`F×F`): the matrix the MLP must apply to a positive input, in
/// tmcc's convention (`M` is the unscaled mixing matrix of the config; `r_sigma = r·σ`).
/// In the paper's convention this is `I + M_paper` with `M_paper = −r·σ·M`.
pub fn target_matrix(m: &[f64], f: usize, r_sigma: f64) -> Vec<f64> {
    let mut a: Vec<f64> = m.iter().map(|v| -r_sigma * v).collect();
    for i in 0..f {
        a[i * f + i] += 1.0;
    }
    a
}

/// MLP weights of one instance: `W1` (`H×F`), `W2` (`F×H`), optional output bias `b2` (`F`).
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub w1: Vec<f64>,
    pub w2: Vec<f64>,
    pub b2: Option<Vec<f64>>,
}

pub fn naive(f: usize, h: usize) -> Weights {
    let mut w1 = vec![0.0; h * f];
    let mut w2 = vec![0.0; f * h];
    for j in 0..h.min(f) {
        w1[j * f + j] = 1.0;
        w2[j * h + j] = 1.0;
    }
    Weights { w1, w2, b2: None }
}

/// Naive with the best constant output `p/4` on the uncomputed features `h..f`.
pub fn naive_offset(f: usize, h: usize, p: f64) -> Weights {
    let mut w = naive(f, h);
    w.b2 = Some((0..f).map(|i| if i < h { 0.0 } else { p / 4.0 }).collect());
    w
}

/// The rank-`h` SVD baseline of `A` (`F×F`).
pub fn svd_baseline(a: &[f64], f: usize, h: usize) -> Weights {
    let d = svd(a, f, f);
    let mut w1 = vec![0.0; h * f];
    let mut w2 = vec![0.0; f * h];
    for j in 0..h {
        let v = &d.vt[j * f..(j + 1) * f];
        let pos: f64 = v.iter().map(|x| x.max(0.0).powi(2)).sum();
        let neg: f64 = v.iter().map(|x| x.min(0.0).powi(2)).sum();
        let sign = if pos >= neg { 1.0 } else { -1.0 };
        for i in 0..f {
            w1[j * f + i] = sign * v[i];
            w2[i * h + j] = sign * d.u[i * f + j] * d.s[j];
        }
    }
    Weights { w1, w2, b2: None }
}

/// Result of [`snmf`].
#[derive(Clone, Debug, PartialEq)]
pub struct Snmf {
    /// `F×H`.
    pub w_out: Vec<f64>,
    /// `H×F`, non-negative.
    pub w_in: Vec<f64>,
    /// `‖A − W_out·W_in‖_F / ‖A‖_F` at the start, every [`SNMF_ERROR_EVERY`] iterations
    /// and at the end.
    pub errors: Vec<f64>,
}

impl Snmf {
    pub fn rel_error(&self) -> f64 {
        *self.errors.last().unwrap_or(&f64::NAN)
    }
    pub fn weights(&self) -> Weights {
        Weights {
            w1: self.w_in.clone(),
            w2: self.w_out.clone(),
            b2: None,
        }
    }
}

/// `W_out = A·W_inᵀ·(W_in·W_inᵀ + εI)⁻¹`.
fn least_squares_out(a: &[f64], w_in: &[f64], f: usize, h: usize) -> Vec<f64> {
    let mut g = matmul(w_in, &transpose(w_in, h, f), h, f, h);
    let eps = 1e-10 * (1.0 + (0..h).map(|i| g[i * h + i]).sum::<f64>() / h as f64);
    (0..h).for_each(|i| g[i * h + i] += eps);
    let rhs = matmul(w_in, &transpose(a, f, f), h, f, f); // W_in·Aᵀ (H×F)
    transpose(&solve_spd(&g, h, &rhs, f), h, f) // (G⁻¹·W_in·Aᵀ)ᵀ
}

fn rel_err(a: &[f64], w_out: &[f64], w_in: &[f64], f: usize, h: usize) -> f64 {
    let prod = matmul(w_out, w_in, f, h, f);
    let diff: Vec<f64> = a.iter().zip(&prod).map(|(x, y)| x - y).collect();
    frobenius(&diff) / frobenius(a).max(f64::MIN_POSITIVE)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `λ_max` of a symmetric PSD `n×n` matrix by power iteration from (and updating) `v`.
fn power_iteration(q: &[f64], n: usize, v: &mut Vec<f64>, iters: usize) -> f64 {
    let mut lambda = 0.0;
    for _ in 0..iters {
        let w = matmul(q, v, n, n, 1);
        let norm = frobenius(&w);
        if norm == 0.0 {
            return 0.0;
        }
        lambda = dot(v, &w);
        *v = w.into_iter().map(|x| x / norm).collect();
    }
    lambda
}

/// Projected gradient steps on `f(W) = ⟨W, Q·W⟩ − 2⟨R, W⟩` (that is `‖A − W_out·W‖²` up to a
/// constant, with `Q = W_outᵀW_out`, `R = W_outᵀA`) over `W ≥ 0`, step `1/L`; a step that
/// would increase `f` is retried with `L` doubled, so `f` never increases.
fn projected_gradient(
    w: &mut Vec<f64>,
    q: &[f64],
    r: &[f64],
    h: usize,
    f: usize,
    mut l: f64,
    steps: usize,
) {
    let mut qw = matmul(q, w, h, h, f);
    let mut fval = dot(w, &qw) - 2.0 * dot(r, w);
    for _ in 0..steps {
        for _attempt in 0..30 {
            let cand: Vec<f64> = w
                .iter()
                .zip(&qw)
                .zip(r)
                .map(|((x, g), rr)| (x - (g - rr) / l).max(0.0))
                .collect();
            let qc = matmul(q, &cand, h, h, f);
            let fc = dot(&cand, &qc) - 2.0 * dot(r, &cand);
            if fc <= fval {
                *w = cand;
                qw = qc;
                fval = fc;
                break;
            }
            l *= 2.0;
        }
    }
}

/// Iterations between two entries of [`Snmf::errors`].
pub const SNMF_ERROR_EVERY: usize = 10;

fn snmf_from(
    a: &[f64],
    f: usize,
    h: usize,
    mut w_in: Vec<f64>,
    iters: usize,
    inner: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut errors = Vec::with_capacity(iters / SNMF_ERROR_EVERY + 2);
    let mut w_out = least_squares_out(a, &w_in, f, h);
    errors.push(rel_err(a, &w_out, &w_in, f, h));
    let mut v = vec![1.0 / (h as f64).sqrt(); h];
    for it in 0..iters {
        let wt = transpose(&w_out, f, h);
        let q = matmul(&wt, &w_out, h, f, h); // W_outᵀ·W_out
        let r = matmul(&wt, a, h, f, f); // W_outᵀ·A
        let l = power_iteration(&q, h, &mut v, if it == 0 { 50 } else { 5 });
        if l > 0.0 {
            projected_gradient(&mut w_in, &q, &r, h, f, l, inner);
        }
        w_out = least_squares_out(a, &w_in, f, h);
        if (it + 1) % SNMF_ERROR_EVERY == 0 || it + 1 == iters {
            errors.push(rel_err(a, &w_out, &w_in, f, h));
        }
    }
    (w_out, w_in, errors)
}

/// SNMF of `A` (`F×F`) with `h` components from the naive start `W_in = [I_H 0]`: `iters`
/// alternations of least squares for `W_out` and `inner` projected gradient steps for
/// `W_in ≥ 0`.
pub fn snmf(a: &[f64], f: usize, h: usize, iters: usize, inner: usize) -> Snmf {
    let (w_out, w_in, errors) = snmf_from(a, f, h, naive(f, h).w1, iters, inner);
    Snmf {
        w_out,
        w_in,
        errors,
    }
}

/// A `mix` model whose instance `k` has the mixing matrix of `cfg`'s instance `k` (same
/// seed, kind and σ, so the same `M`) and the weights `weights[k]`. `cfg` must be a bias-free
/// `mix` config with `weights.len()` instances; `b2` is added when any instance has one
/// (zero for those without).
pub fn to_model(cfg: &Config, weights: &[Weights]) -> Result<Model<f32>, Error> {
    if weights.len() != cfg.instances {
        return Err(Error::Other(format!(
            "{} weight sets for {} instances",
            weights.len(),
            cfg.instances
        )));
    }
    let mut cfg = cfg.clone();
    cfg.bias1 = false;
    cfg.tied = false;
    cfg.bias2 = weights.iter().any(|w| w.b2.is_some());
    let mut model = Model::<f32>::new(&cfg).map_err(tmcc_model::Error::from)?;
    let (f, h) = (cfg.n_feat, cfg.n_hidden);
    let len = model.layout.len;
    let (o1, o2) = (
        model.layout.offset(Param::W1),
        model.layout.offset(Param::W2),
    );
    let ob2 = model.layout.get(Param::B2).map(|s| s.offset);
    for (k, w) in weights.iter().enumerate() {
        if w.w1.len() != h * f || w.w2.len() != f * h {
            return Err(Error::Other("baseline weights have the wrong shape".into()));
        }
        let dst = &mut model.params[k * len..(k + 1) * len];
        dst.iter_mut().for_each(|x| *x = 0.0);
        for (d, s) in dst[o1..o1 + h * f].iter_mut().zip(&w.w1) {
            *d = *s as f32;
        }
        for (d, s) in dst[o2..o2 + f * h].iter_mut().zip(&w.w2) {
            *d = *s as f32;
        }
        if let (Some(o), Some(b)) = (ob2, &w.b2) {
            for (d, s) in dst[o..o + f].iter_mut().zip(b) {
                *d = *s as f32;
            }
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eigen::symmetric_part;
    use crate::runner::{eval_model, Device};
    use tmcc_model::config::{Init, Mixing};
    use tmcc_model::init::mixing_matrix;
    use tmcc_model::Variant;

    fn mix_cfg(sigma: f64) -> Config {
        Config {
            variant: Variant::Mix,
            mixing: Mixing::Symmetric,
            sigma,
            init: Init::KaimingUniform,
            eval_samples: 20_000,
            ..Config::default()
        }
    }

    #[test]
    fn svd_baseline_with_h_equal_f_reproduces_the_target_matrix() {
        let cfg = mix_cfg(0.05);
        let f = cfg.n_feat;
        let a = target_matrix(&mixing_matrix(&cfg, 0), f, 0.05);
        let w = svd_baseline(&a, f, f);
        let prod = matmul(&w.w2, &w.w1, f, f, f);
        for (x, y) in prod.iter().zip(&a) {
            assert!((x - y).abs() < 1e-9, "{x} vs {y}");
        }
    }

    #[test]
    fn snmf_reduces_the_error_and_keeps_w_in_non_negative() {
        let cfg = mix_cfg(0.05);
        let (f, h) = (cfg.n_feat, cfg.n_hidden);
        let a = target_matrix(&mixing_matrix(&cfg, 1), f, 0.05);
        let s = snmf(&a, f, h, 60, 3);
        assert!(s.w_in.iter().all(|&x| x >= 0.0));
        assert!(
            s.errors.windows(2).all(|e| e[1] <= e[0] * (1.0 + 1e-9)),
            "error increased: {:?}",
            s.errors
        );
        assert!(
            s.rel_error() < s.errors[0] - 1e-3,
            "{:?}",
            (s.errors[0], s.rel_error())
        );
        // A rank-h factorisation of a near-identity F×F matrix cannot beat the best rank-h
        // approximation (the SVD's): error ≥ sqrt(Σ_{j>h} s_j²)/‖A‖.
        let d = svd(&a, f, f);
        let floor = d.s[h..].iter().map(|x| x * x).sum::<f64>().sqrt() / frobenius(&a);
        assert!(s.rel_error() >= floor - 1e-9);
        // At σ = 0 the naive start is already optimal: W_out·W_in = [I_H 0; 0 0].
        let eye = target_matrix(&vec![0.0; f * f], f, 0.0);
        let s0 = snmf(&eye, f, h, 10, 3);
        assert!((s0.rel_error() - (0.5f64).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn target_matrix_has_the_mlp_sign() {
        // r·(I + σM)x + MLP(x) = ReLU(x) + r·x  ⇔  MLP(x) = ReLU(x) − rσM·x.
        let m = vec![0.0, 2.0, -1.0, 0.0];
        let a = target_matrix(&m, 2, 0.1);
        assert_eq!(a, vec![1.0, -0.2, 0.1, 1.0]);
        let s = symmetric_part(&a, 2);
        assert!((s[1] + 0.05).abs() < 1e-15);
    }

    #[test]
    fn the_target_matrix_sign_matches_the_model() {
        // With H = F, W1 = I and W2 = B the MLP outputs B·ReLU(x). The trained models' target
        // is ReLU(x) − rσM·x, so B = target_matrix(M, rσ) = I − rσM must beat B = I + rσM
        // on the real forward pass (errors rσM·min(x, 0) against rσM·(x + ReLU(x))).
        let sigma = 0.05;
        let cfg = Config {
            n_hidden: 100,
            instances: 2,
            seed_per_instance: vec![3, 3],
            ..mix_cfg(sigma)
        };
        let f = cfg.n_feat;
        let m = mixing_matrix(&cfg, 3);
        let mut eye = vec![0.0; f * f];
        (0..f).for_each(|i| eye[i * f + i] = 1.0);
        let with = |b: Vec<f64>| Weights {
            w1: eye.clone(),
            w2: b,
            b2: None,
        };
        let model = to_model(
            &cfg,
            &[
                with(target_matrix(&m, f, sigma)),
                with(target_matrix(&m, f, -sigma)),
            ],
        )
        .unwrap();
        let ev = eval_model(&Device::Cpu, &model, 50_000, None).unwrap();
        assert!(
            ev[0].loss < 0.5 * ev[1].loss,
            "{} vs {}",
            ev[0].loss,
            ev[1].loss
        );
    }

    #[test]
    fn naive_baseline_evaluates_to_the_naive_loss_without_mixing() {
        let cfg = Config {
            instances: 2,
            sigma_per_instance: vec![0.0, 0.0],
            ..mix_cfg(0.0)
        };
        let (f, h) = (cfg.n_feat, cfg.n_hidden);
        let model = to_model(&cfg, &[naive(f, h), naive_offset(f, h, cfg.p)]).unwrap();
        let ev = eval_model(&Device::Cpu, &model, 200_000, None).unwrap();
        assert!(
            (ev[0].ratio - 1.0).abs() < 4.0 * ev[0].ratio_se + 1e-6,
            "{:?}",
            ev[0]
        );
        // The offset removes (p/4)² per uncomputed feature: a tiny but real gain.
        assert!(ev[1].loss < ev[0].loss);
    }

    /// Elhage's task (|x| of signed values, importance 0.8^f) in every data mode: a naive
    /// MLP built by hand — neurons `2j`, `2j+1` read `±x_j` and both write feature `j`, so
    /// `out_j = ReLU(x_j) + ReLU(−x_j) = |x_j|` for `j < H/2` — evaluated by the ordinary
    /// evaluation on its stream, with output 0 and with the best L2 constant, the mean
    /// `P·E|u| = P/2`, on the other features; against the formulas of `tmcc_model::task`.
    #[test]
    fn naive_abs_models_evaluate_to_their_baselines_in_every_data_mode() {
        use tmcc_model::config::{DataMode, Labels};
        use tmcc_model::data::DataSpec;
        for (data, p, k) in [
            (DataMode::Bernoulli, 0.1, None),
            (DataMode::AtLeastOne, 0.02, None),
            (DataMode::ExactlyK, 0.01, Some(2)),
        ] {
            let cfg = Config {
                variant: Variant::Mlp,
                n_feat: 10,
                n_hidden: 4,
                labels: Labels::Abs,
                importance_decay: Some(0.8),
                data,
                p,
                exactly_k: k,
                instances: 2,
                eval_samples: 200_000,
                ..Config::default()
            };
            cfg.validate().unwrap();
            let (f, h) = (cfg.n_feat, cfg.n_hidden);
            let mut w = Weights {
                w1: vec![0.0; h * f],
                w2: vec![0.0; f * h],
                b2: None,
            };
            for j in 0..h / 2 {
                w.w1[2 * j * f + j] = 1.0;
                w.w1[(2 * j + 1) * f + j] = -1.0;
                w.w2[j * h + 2 * j] = 1.0;
                w.w2[j * h + 2 * j + 1] = 1.0;
            }
            let pm = DataSpec::of(&cfg).marginal(cfg.instance_p(0), f);
            let mut offset = w.clone();
            offset.b2 = Some(
                (0..f)
                    .map(|i| if i < h / 2 { 0.0 } else { pm / 2.0 })
                    .collect(),
            );
            w.b2 = Some(vec![0.0; f]);
            let model = to_model(&cfg, &[w, offset]).unwrap();
            let ev = eval_model(&Device::Cpu, &model, cfg.eval_samples, None).unwrap();
            let task = cfg.task();
            let p0 = cfg.instance_p(0);
            for (e, want) in [
                (&ev[0], task.naive_loss(h, p0)),
                (&ev[1], task.naive_constant_loss(h, p0)),
            ] {
                assert!(
                    (e.loss - want).abs() <= 4.0 * e.loss_se + 1e-7,
                    "{data:?}: {} ± {} vs {want}",
                    e.loss,
                    e.loss_se
                );
            }
            assert!(ev[1].loss < ev[0].loss, "{data:?}");
        }
    }
}
