//! The task a model is trained on, defined once (docs/science.md#task): the labels, the
//! residual factor, the loss, its space and the feature importance. The kernels know none
//! of it; the reference path, the fast path and the evaluation all take it from here.
//!
//! - Labels, elementwise (APD's `act_plus_resid`): `y_f = act(c_f·x_f) + r·x_f` with the
//!   hidden activation `act` (ReLU or GELU) and per-feature coefficients `c_f`: all 1
//!   (`label_coeffs = "trivial"`, the seed's `ReLU(x) + r·x`) or one draw per feature from
//!   `U[1, 2)` of the label stream of `label_seed` (`"uniform"`, APD's
//!   `use_trivial_label_coeffs = False`). A label is 0 wherever `x` is 0, so the labels of
//!   a sparse batch are sparse with the same cells ([`Task::label`]).
//! - Loss of one sample, read-off space: `Σ_f imp_f · ℓ(out_f − y_f)`; residual space
//!   (APD's `resid` loss, importance 1): `Σ_d ℓ(s_d − (W_E y)_d)` against the residual stream
//!   `s`. `ℓ(e) = e²` (L2) or `|e|` (L1, subgradient 0 at 0); a batch's loss is the mean
//!   over samples and features (read-off) or embedding dimensions (residual).
//! - Naive loss at feature probability `p` with `H = Σ_l H_l` neurons: the `H` features of
//!   largest `imp_f·m_f` computed exactly, the others left at 0 beyond the residual, per
//!   feature and sample: `p·Σ_{uncomputed} imp_f·m_f / F`, with `m_f = E[ℓ(act(c_f·u))]`,
//!   `u ~ U[-1, 1]`. ReLU: `m = c²/6` (L2), `c/4` (L1); GELU: the same mean by composite
//!   Simpson quadrature. In residual space the uncomputed errors are spread over `D`
//!   dimensions by unit-norm embedding columns: `≈ F/D` times the read-off value (exact up
//!   to the cross terms `eᵀ N e` of the embedding noise).

use tmcc_kernels::LossKind;

use crate::act::Act;
use crate::config::{Config, LabelCoeffs, LossName, LossSpace};
use crate::init::{matrix, rng, uniform, Stream};
use crate::model::Float;

/// What every instance of a model is trained to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// `r` in `y = act(c·x) + r·x`.
    pub res_factor: f64,
    /// The activation of the labels (the model's hidden activation).
    pub act: Act,
    /// `c_f`, one per feature (`F`).
    pub coeffs: Vec<f64>,
    pub loss: LossName,
    pub space: LossSpace,
    /// `imp_f`, one per feature (`F`).
    pub importance: Vec<f64>,
    /// `D / F`: residual-space losses are means over `D` dimensions.
    pub resid_per_feature: f64,
}

/// The label coefficients `c` of `cfg` (module documentation).
pub fn label_coeffs(cfg: &Config) -> Vec<f64> {
    match cfg.label_coeffs {
        LabelCoeffs::Trivial => vec![1.0; cfg.n_feat],
        LabelCoeffs::Uniform => {
            let mut r = rng(cfg.label_seed, Stream::Labels);
            matrix(&mut r, 1, cfg.n_feat, uniform(1.0, 2.0))
        }
    }
}

impl Task {
    /// The task of `cfg`.
    pub fn of(cfg: &Config) -> Self {
        Self {
            res_factor: cfg.res_factor(),
            act: cfg.act,
            coeffs: label_coeffs(cfg),
            loss: cfg.loss,
            space: cfg.loss_space,
            importance: (0..cfg.n_feat).map(|f| cfg.importance_of(f)).collect(),
            resid_per_feature: cfg.d_in() as f64 / cfg.n_feat as f64,
        }
    }

    /// The label of feature `f` at input value `x`: `act(c_f·x) + r·x`.
    #[inline]
    pub fn label<T: Float>(&self, f: usize, x: T) -> T {
        self.act.apply(T::from_f64(self.coeffs[f]) * x) + T::from_f64(self.res_factor) * x
    }

    /// The loss as the kernels name it.
    pub fn loss_kind(&self) -> LossKind {
        match self.loss {
            LossName::L2 => LossKind::L2,
            LossName::L1 => LossKind::L1,
        }
    }

    /// `imp_f` in the element type `T`.
    pub fn importance_as<T: Float>(&self) -> Vec<T> {
        self.importance.iter().map(|&w| T::from_f64(w)).collect()
    }

    /// `m_f = E[ℓ(act(c_f·u))]`, `u ~ U[-1, 1]` (module documentation).
    fn moment(&self, c: f64) -> f64 {
        match (self.act, self.loss) {
            (Act::Relu, LossName::L2) => c * c / 6.0,
            (Act::Relu, LossName::L1) => c / 4.0,
            (Act::Gelu, loss) => {
                let ell = |u: f64| {
                    let a = Act::Gelu.apply(c * u);
                    match loss {
                        LossName::L2 => a * a,
                        LossName::L1 => a.abs(),
                    }
                };
                // Composite Simpson on [-1, 1] (n even); the mean is half the integral.
                let n = 2000;
                let step = 2.0 / n as f64;
                let sum: f64 = (0..=n)
                    .map(|i| {
                        let w = if i == 0 || i == n {
                            1.0
                        } else if i % 2 == 1 {
                            4.0
                        } else {
                            2.0
                        };
                        w * ell(-1.0 + i as f64 * step)
                    })
                    .sum();
                sum * step / 3.0 / 2.0
            }
        }
    }

    /// Loss per feature (or residual dimension) and sample of a model with `n_hidden`
    /// neurons in all that computes its `n_hidden` most valuable features exactly and
    /// outputs 0 (beyond the residual) for the rest, at feature probability `p` (module
    /// documentation).
    pub fn naive_loss(&self, n_hidden: usize, p: f64) -> f64 {
        let f = self.importance.len() as f64;
        let readoff = if self.coeffs.iter().all(|&c| c == self.coeffs[0]) {
            // One moment for all features: the most important ones are computed.
            let mut imp = self.importance.clone();
            imp.sort_by(|a, b| b.total_cmp(a));
            let uncomputed: f64 = imp.iter().skip(n_hidden).sum();
            p * self.moment(self.coeffs[0]) * uncomputed / f
        } else {
            let mut value: Vec<f64> = self
                .importance
                .iter()
                .zip(&self.coeffs)
                .map(|(&w, &c)| w * self.moment(c))
                .collect();
            value.sort_by(|a, b| b.total_cmp(a));
            p * value.iter().skip(n_hidden).sum::<f64>() / f
        };
        match self.space {
            LossSpace::Readoff => readoff,
            LossSpace::Resid => readoff / self.resid_per_feature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(act: Act, coeffs: Vec<f64>) -> Task {
        Task {
            res_factor: 0.5,
            act,
            importance: vec![1.0; coeffs.len()],
            coeffs,
            loss: LossName::L2,
            space: LossSpace::Readoff,
            resid_per_feature: 10.0,
        }
    }

    #[test]
    fn labels_are_act_of_c_x_plus_the_residual_and_zero_at_zero() {
        let t = task(Act::Relu, vec![1.0, 1.5]);
        assert_eq!(t.label(0, 0.0f64), 0.0);
        assert_eq!(t.label(0, 0.8f64), 0.8 + 0.4);
        assert_eq!(t.label(0, -0.8f64), -0.4);
        assert_eq!(t.label(1, 0.8f64), 1.5 * 0.8 + 0.4);
        let g = task(Act::Gelu, vec![2.0]);
        assert_eq!(g.label(0, 0.0f64), 0.0);
        assert!((g.label(0, 0.5f64) - (Act::Gelu.apply(1.0f64) + 0.25)).abs() < 1e-15);
    }

    #[test]
    fn uniform_coefficients_are_in_one_two_and_follow_the_label_seed() {
        let mut cfg = Config {
            label_coeffs: LabelCoeffs::Uniform,
            ..Config::default()
        };
        let a = label_coeffs(&cfg);
        assert!(a.iter().all(|c| (1.0..2.0).contains(c)));
        assert!(a.iter().any(|&c| c != a[0]));
        cfg.seed = 99;
        assert_eq!(label_coeffs(&cfg), a, "the model seed does not move them");
        cfg.label_seed = 1;
        assert_ne!(label_coeffs(&cfg), a);
    }

    #[test]
    fn naive_loss_leaves_out_the_most_valuable_features() {
        let cfg = Config {
            n_feat: 4,
            n_hidden: 2,
            importance: vec![1.0, 4.0, 2.0, 3.0],
            ..Config::default()
        };
        // Features 1 and 3 are computed; 1 + 2 are left, over 4 features.
        let want = 0.01 / 6.0 * 3.0 / 4.0;
        assert!((Task::of(&cfg).naive_loss(2, 0.01) - want).abs() < 1e-15);
        // Coefficients weigh in: c = 2 on feature 0 makes it worth 4/6.
        let mut t = task(Act::Relu, vec![2.0, 1.0, 1.0]);
        assert!((t.naive_loss(1, 1.0) - 2.0 / 6.0 / 3.0).abs() < 1e-15);
        // GELU: E[GELU(u)²] = 0.1087783061655… (midpoint rule, 2·10⁵ cells, independently);
        // E[|GELU(u)|] = 1/4 exactly, since |u·Φ(u)| + |−u·Φ(−u)| = u on u > 0.
        t.act = Act::Gelu;
        t.coeffs = vec![1.0];
        let m = t.moment(1.0);
        assert!((m - 0.108_778_306_165_553).abs() < 1e-9, "{m}");
        t.loss = LossName::L1;
        assert!((t.moment(1.0) - 0.25).abs() < 1e-9);
        t.loss = LossName::L2;
        t.space = LossSpace::Resid;
        assert!((t.naive_loss(0, 1.0) - m / 10.0).abs() < 1e-15);
    }
}
