//! The task a model is trained on, defined once (docs/science.md#task): the labels, the
//! residual factor, the loss, its space, the feature importance and the law of the data.
//! The kernels know none of it; the reference path, the fast path and the evaluation all
//! take it from here.
//!
//! - Labels, elementwise, with per-feature coefficients `c_f`: all 1 (`label_coeffs =
//!   "trivial"`) or one draw per feature from `U[1, 2)` of the label stream of
//!   `label_seed` (`"uniform"`, APD's `use_trivial_label_coeffs = False`); `labels`
//!   (crate::data) picks `act(c_f·x_f) + r·x_f` (APD's `act_plus_resid`, the seed's
//!   `ReLU(x) + r·x`, with the hidden activation), `|c_f·x_f|` or `ReLU(c_f·x_f)`. A label
//!   is 0 wherever `x` is 0, so the labels of a sparse batch are sparse with the same cells
//!   ([`Task::label`]).
//! - Loss of one sample, read-off space: `Σ_f imp_f · ℓ(out_f − y_f)`; residual space
//!   (APD's `resid` loss, importance 1): `Σ_d ℓ(s_d − (W_E y)_d)` against the residual stream
//!   `s`. `ℓ(e) = e²` (L2) or `|e|` (L1, subgradient 0 at 0); a batch's loss is the mean
//!   over samples and features (read-off) or embedding dimensions (residual).
//!
//! Naive losses. A model's residual stream delivers `ρ·x` for free (`ρ = r` with a
//! residual stream, else 0), so what its neurons must add for feature `f` is
//! `t_f(u) = y_f(u) − ρ·u`: `act(c·u)` (`act_plus_resid`, where `ρ = r` is also the
//! label's), `|c·u| − ρ·u` (`abs`) or `ReLU(c·u) − ρ·u` (`relu`). With ReLU neurons the
//! latter two are `t = a·ReLU(u) + b·ReLU(−u)` with `a = c − ρ` and `b = c + ρ` (abs) or
//! `b = ρ` (relu); `act(c·u)` is one neuron (of the label's own activation; the
//! identity's `c·u = c·ReLU(u) − c·ReLU(−u)` gives its moments). A feature costs `κ_f` neurons: 1 for
//! `act_plus_resid`, else the number of non-zero `a`, `b` (only `a` with `U[0, 1]` values,
//! where `ReLU(−u) = 0`); the task's `κ = max_f κ_f` (≥ 1), so `H` neurons compute `⌊H/κ⌋`
//! features exactly (`|u|` of a signed value takes two ReLUs, `|u| − u = 2·ReLU(−u)` one).
//! A feature is active with the marginal probability `P` of its data law
//! ([`DataSpec::marginal`]: `p`, `p/(1 − (1−p)^F)` or `k/F`), and then `u` is uniform on
//! `[−1, 1]` or `[0, 1]`. Per uncomputed feature and sample, with `X = t(u)` if active
//! else 0:
//!
//! - [`Task::naive_loss`] (the seed's naive model: 0 beyond the residual; what `loss/naive`
//!   divides by): `imp_f·P·E[ℓ(t_f(u))]`.
//! - [`Task::naive_constant_loss`] (the best constant `β_f` beyond the residual): L2, the
//!   mean `β = P·E[t]`, loss `imp_f·(P·E[t²] − P²·E[t]²)`; L1, a median of `X`: 0 when
//!   `P ≤ ½` (the atom at 0 holds half the mass), so the loss is `P·E|t|` as above; else
//!   the weighted median of `X` on a midpoint grid of `2¹⁴` values of `u` (numeric).
//!
//! Moments for the ReLU family (exact): signed `E t = (a + b)/4`, `E t² = (a² + b²)/6`,
//! `E|t| = (|a| + |b|)/4`; unsigned `E t = a/2`, `E t² = a²/3`, `E|t| = |a|/2` — for the
//! seed's task (`a = 1, b = 0`) `E t² = 1/6` and the naive loss is `(1 − H/F)·p/6`. GELU:
//! composite Simpson quadrature (2000 panels). Both baselines compute the `⌊H/κ⌋` features
//! of largest `imp_f·L_f` (their own per-feature loss `L_f`) and average the rest over
//! `F`. In residual space the uncomputed errors are spread over `D` dimensions by
//! unit-norm embedding columns: `≈ F/D` times the read-off value (exact up to the cross
//! terms `eᵀ N e` of the embedding noise).

use tmcc_kernels::LossKind;

use crate::act::Act;
use crate::config::{Config, LabelCoeffs, LossName, LossSpace};
use crate::data::{DataSpec, Labels, Values};
use crate::init::{matrix, rng, uniform, Stream};
use crate::model::Float;

/// What every instance of a model is trained to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// `r` in `y = act(c·x) + r·x` and in the residual stream.
    pub res_factor: f64,
    /// `ρ`, what the residual stream adds to the output: `r` with one, else 0.
    pub residual: f64,
    /// The activation of the labels (the model's hidden activation).
    pub act: Act,
    pub labels: Labels,
    /// `c_f`, one per feature (`F`).
    pub coeffs: Vec<f64>,
    pub loss: LossName,
    pub space: LossSpace,
    /// `imp_f`, one per feature (`F`).
    pub importance: Vec<f64>,
    /// `D / F`: residual-space losses are means over `D` dimensions.
    pub resid_per_feature: f64,
    /// The law of the data.
    pub data: DataSpec,
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

/// `E t`, `E t²` and `E|t|` of what the neurons must add for one feature, `u` uniform on
/// the value range (module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Moments {
    mean: f64,
    square: f64,
    abs: f64,
}

/// Composite Simpson mean of `g` over `[lo, hi]` (2000 panels).
fn simpson_mean(lo: f64, hi: f64, g: impl Fn(f64) -> f64) -> f64 {
    let n = 2000;
    let step = (hi - lo) / n as f64;
    let sum: f64 = (0..=n)
        .map(|i| {
            let w = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * g(lo + i as f64 * step)
        })
        .sum();
    sum * step / 3.0 / (hi - lo)
}

impl Task {
    /// The task of `cfg`.
    pub fn of(cfg: &Config) -> Self {
        Self {
            res_factor: cfg.res_factor(),
            residual: if cfg.variant.has_residual() {
                cfg.res_factor()
            } else {
                0.0
            },
            act: cfg.act,
            labels: cfg.labels,
            coeffs: label_coeffs(cfg),
            loss: cfg.loss,
            space: cfg.loss_space,
            importance: (0..cfg.n_feat).map(|f| cfg.importance_of(f)).collect(),
            resid_per_feature: cfg.d_in() as f64 / cfg.n_feat as f64,
            data: DataSpec::of(cfg),
        }
    }

    /// The label of feature `f` at input value `x` (module documentation).
    #[inline]
    pub fn label<T: Float>(&self, f: usize, x: T) -> T {
        let cx = T::from_f64(self.coeffs[f]) * x;
        match self.labels {
            Labels::ActPlusResid => self.act.apply(cx) + T::from_f64(self.res_factor) * x,
            Labels::Abs => cx.abs(),
            Labels::Relu => cx.max(T::zero()),
        }
    }

    /// What the neurons must add for feature `f` at value `u`: `t_f(u) = y_f(u) − ρ·u`
    /// (`act(c·u)` for `act_plus_resid`).
    pub fn target(&self, f: usize, u: f64) -> f64 {
        match self.labels {
            Labels::ActPlusResid => self.act.apply(self.coeffs[f] * u),
            _ => self.label(f, u) - self.residual * u,
        }
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

    /// `(a, b)` of `t = a·ReLU(u) + b·ReLU(−u)` for coefficient `c`, or `None` when `t` is
    /// not of that form (GELU labels).
    fn relu_parts(&self, c: f64) -> Option<(f64, f64)> {
        let rho = self.residual;
        match (self.labels, self.act) {
            (Labels::ActPlusResid, Act::Relu) => Some((c, 0.0)),
            (Labels::ActPlusResid, Act::Identity) => Some((c, -c)),
            (Labels::ActPlusResid, Act::Gelu) => None,
            (Labels::Abs, _) => Some((c - rho, c + rho)),
            (Labels::Relu, _) => Some((c - rho, rho)),
        }
    }

    /// Neurons the naive model spends on a feature of coefficient `c` (module
    /// documentation).
    fn cost(&self, c: f64) -> usize {
        match (self.labels, self.relu_parts(c)) {
            (Labels::ActPlusResid, _) | (_, None) => 1,
            (_, Some((a, b))) => {
                usize::from(a != 0.0) + usize::from(b != 0.0 && self.data.values == Values::Signed)
            }
        }
    }

    /// `E t`, `E t²`, `E|t|` for coefficient `c` (module documentation).
    fn moments(&self, c: f64) -> Moments {
        match (self.relu_parts(c), self.data.values) {
            (Some((a, b)), Values::Signed) => Moments {
                mean: (a + b) / 4.0,
                square: (a * a + b * b) / 6.0,
                abs: (a.abs() + b.abs()) / 4.0,
            },
            (Some((a, _)), Values::Unsigned) => Moments {
                mean: a / 2.0,
                square: a * a / 3.0,
                abs: a.abs() / 2.0,
            },
            (None, values) => {
                let (lo, hi) = values.range();
                let t = |u: f64| self.act.apply(c * u);
                Moments {
                    mean: simpson_mean(lo, hi, t),
                    square: simpson_mean(lo, hi, |u| t(u) * t(u)),
                    abs: simpson_mean(lo, hi, |u| t(u).abs()),
                }
            }
        }
    }

    /// `m = E[ℓ(t(u))]` for coefficient `c`.
    fn moment(&self, c: f64) -> f64 {
        let m = self.moments(c);
        match self.loss {
            LossName::L2 => m.square,
            LossName::L1 => m.abs,
        }
    }

    /// The best-constant loss of one uncomputed feature of coefficient `c` active with
    /// probability `pm` (importance 1; module documentation).
    fn constant_loss(&self, f: usize, pm: f64) -> f64 {
        let m = self.moments(self.coeffs[f]);
        match self.loss {
            LossName::L2 => pm * m.square - (pm * m.mean) * (pm * m.mean),
            LossName::L1 if pm <= 0.5 => pm * m.abs,
            LossName::L1 => {
                // Weighted median of X: the atom 1 − P at 0 and P/N at t(u_i), N midpoints.
                let n = 1 << 14;
                let (lo, hi) = self.data.values.range();
                let mut xs: Vec<(f64, f64)> = (0..n)
                    .map(|i| {
                        let u = lo + (i as f64 + 0.5) * (hi - lo) / n as f64;
                        (self.target(f, u), pm / n as f64)
                    })
                    .collect();
                xs.push((0.0, 1.0 - pm));
                xs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut below = 0.0;
                let median = xs
                    .iter()
                    .find(|&&(_, w)| {
                        below += w;
                        below >= 0.5
                    })
                    .map_or(0.0, |&(x, _)| x);
                xs.iter().map(|&(x, w)| w * (x - median).abs()).sum()
            }
        }
    }

    /// How many features `n_hidden` neurons compute exactly: `⌊H/κ⌋` (module documentation).
    pub fn naive_computed(&self, n_hidden: usize) -> usize {
        let kappa = self.coeffs.iter().map(|&c| self.cost(c)).max().unwrap_or(1);
        n_hidden / kappa.max(1)
    }

    /// The mean over `F` of the per-feature losses `loss_f` of the features the naive
    /// model leaves out (all but the `naive_computed` largest), in the loss's space.
    fn leave_out(&self, n_hidden: usize, mut loss_f: Vec<f64>) -> f64 {
        loss_f.sort_by(|a, b| b.total_cmp(a));
        let readoff = loss_f
            .iter()
            .skip(self.naive_computed(n_hidden))
            .sum::<f64>()
            / loss_f.len() as f64;
        match self.space {
            LossSpace::Readoff => readoff,
            LossSpace::Resid => readoff / self.resid_per_feature,
        }
    }

    /// Loss per feature (or residual dimension) and sample of a model with `n_hidden`
    /// neurons in all that computes its most valuable features exactly and outputs 0
    /// (beyond the residual) for the rest, at feature probability `p` (module
    /// documentation; with exactly-`k` data `p` plays no part).
    pub fn naive_loss(&self, n_hidden: usize, p: f64) -> f64 {
        let f = self.importance.len() as f64;
        let pm = self.data.marginal(p, self.importance.len());
        let computed = self.naive_computed(n_hidden);
        let readoff = if self.coeffs.iter().all(|&c| c == self.coeffs[0]) {
            // One moment for all features: the most important ones are computed.
            let mut imp = self.importance.clone();
            imp.sort_by(|a, b| b.total_cmp(a));
            let uncomputed: f64 = imp.iter().skip(computed).sum();
            pm * self.moment(self.coeffs[0]) * uncomputed / f
        } else {
            let mut value: Vec<f64> = self
                .importance
                .iter()
                .zip(&self.coeffs)
                .map(|(&w, &c)| w * self.moment(c))
                .collect();
            value.sort_by(|a, b| b.total_cmp(a));
            pm * value.iter().skip(computed).sum::<f64>() / f
        };
        match self.space {
            LossSpace::Readoff => readoff,
            LossSpace::Resid => readoff / self.resid_per_feature,
        }
    }

    /// As [`naive_loss`](Self::naive_loss), with the best constant (L2: mean, L1: median)
    /// instead of 0 beyond the residual for the uncomputed features.
    pub fn naive_constant_loss(&self, n_hidden: usize, p: f64) -> f64 {
        let pm = self.data.marginal(p, self.importance.len());
        let loss_f = (0..self.importance.len())
            .map(|f| self.importance[f] * self.constant_loss(f, pm))
            .collect();
        self.leave_out(n_hidden, loss_f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(act: Act, coeffs: Vec<f64>) -> Task {
        Task {
            res_factor: 0.5,
            residual: 0.5,
            act,
            labels: Labels::ActPlusResid,
            importance: vec![1.0; coeffs.len()],
            coeffs,
            loss: LossName::L2,
            space: LossSpace::Readoff,
            resid_per_feature: 10.0,
            data: DataSpec::default(),
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

    /// The naive losses of every label × values × data mode × importance × loss ×
    /// residual combination against a hand-built naive model on the evaluation stream: it
    /// outputs the label on its first `⌊H/κ⌋` features (importance decreases with `f` and
    /// `c = 1`, so they are the most valuable; `κ` by hand: 2 where `|u|` or a two-sided
    /// `t` of a signed value needs both `ReLU(±u)`) and `ρ·x + β_f` on the rest, `β_f = 0`
    /// or the stream's own mean (L2) / median (L1) of `y_f − ρ·x_f`.
    #[test]
    fn naive_losses_match_a_hand_built_naive_model_on_the_stream() {
        use crate::batch::{HostBatch, Sampler};
        use crate::config::{DataMode, Variant};
        let (f, h, samples) = (8usize, 3usize, 40_000usize);
        let mut checked = 0;
        for labels in [Labels::ActPlusResid, Labels::Abs, Labels::Relu] {
            for values in [Values::Signed, Values::Unsigned] {
                for (data, p, k) in [
                    (DataMode::Bernoulli, 0.2, None),
                    (DataMode::Bernoulli, 0.7, None),
                    (DataMode::AtLeastOne, 0.05, None),
                    (DataMode::ExactlyK, 0.01, Some(2)),
                    (DataMode::ExactlyK, 0.01, Some(6)),
                ] {
                    for (variant, rho) in [(Variant::Mlp, 0.0), (Variant::ResMlp, 0.5)] {
                        for (decay, loss) in [(true, LossName::L2), (false, LossName::L1)] {
                            let cfg = Config {
                                variant,
                                n_feat: f,
                                n_hidden: h,
                                labels,
                                values,
                                data,
                                p,
                                exactly_k: k,
                                res_factor: (rho != 0.0).then_some(rho),
                                importance_decay: decay.then_some(0.8),
                                importance: if decay {
                                    Vec::new()
                                } else {
                                    (0..f).map(|i| 2.0 - 0.2 * i as f64).collect()
                                },
                                loss,
                                ..Config::default()
                            };
                            cfg.validate().unwrap();
                            let task = Task::of(&cfg);
                            let two_sided = values == Values::Signed
                                && (labels == Labels::Abs
                                    || (labels == Labels::Relu && rho != 0.0));
                            let computed = if two_sided { h / 2 } else { h };
                            assert_eq!(task.naive_computed(h), computed, "{cfg:?}");
                            let mut sampler = Sampler::<f64>::new(
                                vec![rng(cfg.eval_seed, Stream::Eval)],
                                vec![cfg.instance_p(0)],
                            )
                            .with_data(DataSpec::of(&cfg));
                            let mut b = HostBatch::default();
                            sampler.sample(samples, f, &mut b);
                            let x = b.dense_instance(0);
                            // e[s·F + f] = y_f − ρ·x_f, what the naive model must match.
                            let e: Vec<f64> = x
                                .iter()
                                .enumerate()
                                .map(|(i, &v)| task.label(i % f, v) - rho * v)
                                .collect();
                            let beta: Vec<f64> = (0..f)
                                .map(|j| {
                                    let mut col: Vec<f64> =
                                        e.iter().skip(j).step_by(f).copied().collect();
                                    match loss {
                                        LossName::L2 => col.iter().sum::<f64>() / samples as f64,
                                        LossName::L1 => {
                                            col.sort_by(f64::total_cmp);
                                            col[samples / 2]
                                        }
                                    }
                                })
                                .collect();
                            let ell = |d: f64| match loss {
                                LossName::L2 => d * d,
                                LossName::L1 => d.abs(),
                            };
                            for (want, constant) in [
                                (task.naive_loss(h, cfg.instance_p(0)), false),
                                (task.naive_constant_loss(h, cfg.instance_p(0)), true),
                            ] {
                                let per_sample: Vec<f64> = e
                                    .chunks_exact(f)
                                    .map(|row| {
                                        (computed..f)
                                            .map(|j| {
                                                let b = if constant { beta[j] } else { 0.0 };
                                                task.importance[j] * ell(row[j] - b)
                                            })
                                            .sum::<f64>()
                                            / f as f64
                                    })
                                    .collect();
                                let n = samples as f64;
                                let mean = per_sample.iter().sum::<f64>() / n;
                                let var =
                                    per_sample.iter().map(|l| (l - mean).powi(2)).sum::<f64>()
                                        / (n - 1.0);
                                let se = (var / n).sqrt();
                                assert!(
                                    (mean - want).abs() <= 4.0 * se + 1e-9,
                                    "constant {constant}: stream {mean} ± {se} vs formula {want}: {cfg:?}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 2 * 5 * 2 * 2 * 2);
    }

    #[test]
    fn new_labels_are_abs_and_relu_of_c_x_and_today_s_values_do_not_move() {
        let mut t = task(Act::Relu, vec![1.5]);
        t.labels = Labels::Abs;
        assert_eq!(t.label(0, -0.8f64), 1.5 * 0.8);
        assert_eq!(t.label(0, 0.0f64), 0.0);
        t.labels = Labels::Relu;
        assert_eq!(t.label(0, -0.8f64), 0.0);
        assert_eq!(t.label(0, 0.8f64), 1.5 * 0.8);
        // Today's baselines, bit for bit (the seed's (1 − H/F)·p/6, its L1 value p/4 per
        // feature, GELU's quadrature).
        let c = Config::default();
        assert_eq!(c.naive_loss(0.01), 0.01 * (1.0 / 6.0) * 50.0 / 100.0);
        let l1 = Config {
            loss: LossName::L1,
            ..Config::default()
        };
        assert_eq!(l1.naive_loss(0.01), 0.01 * 0.25 * 50.0 / 100.0);
    }
}
