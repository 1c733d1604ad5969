//! The task a model is trained on, defined once (docs/science.md#task): the labels, the
//! residual factor, the loss and the feature importance. The kernels know none of it;
//! the reference path, the fast path and the evaluation all take it from here.
//!
//! - Labels, elementwise: `y = ReLU(x) + r·x`. A label is 0 wherever `x` is 0, so the
//!   labels of a sparse batch are sparse with the same cells ([`Task::label`]).
//! - Loss of one sample: `Σ_f imp_f · ℓ(out_f − y_f)`, `ℓ(e) = e²` (L2) or `|e|` (L1,
//!   subgradient 0 at 0); a batch's loss is the mean over samples and features.
//! - Naive loss at feature probability `p`: the `H` most important features computed
//!   exactly, the others left at 0 beyond the residual, per feature and sample:
//!   `p·E[ℓ(ReLU(u))]·Σ_{uncomputed} imp_f / F`, `u ~ U[-1, 1]`, with `E[ReLU(u)²] = 1/6`
//!   and `E[ReLU(u)] = 1/4`.

use tmcc_kernels::LossKind;

use crate::config::{Config, LossName};
use crate::model::Float;

/// What every instance of a model is trained to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// `r` in `y = ReLU(x) + r·x`.
    pub res_factor: f64,
    pub loss: LossName,
    /// `imp_f`, one per feature (`F`).
    pub importance: Vec<f64>,
}

impl Task {
    /// The task of `cfg`.
    pub fn of(cfg: &Config) -> Self {
        Self {
            res_factor: cfg.res_factor(),
            loss: cfg.loss,
            importance: (0..cfg.n_feat).map(|f| cfg.importance_of(f)).collect(),
        }
    }

    /// The label of an input value `x`: `ReLU(x) + r·x`.
    #[inline]
    pub fn label<T: Float>(&self, x: T) -> T {
        x.max(T::zero()) + T::from_f64(self.res_factor) * x
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

    /// Loss per feature and sample of a model with `n_hidden` neurons that computes its
    /// `n_hidden` most important features exactly and outputs 0 (beyond the residual)
    /// for the rest, at feature probability `p` (module documentation).
    pub fn naive_loss(&self, n_hidden: usize, p: f64) -> f64 {
        let mut imp = self.importance.clone();
        imp.sort_by(|a, b| b.total_cmp(a));
        let uncomputed: f64 = imp.iter().skip(n_hidden).sum();
        let moment = match self.loss {
            LossName::L2 => 1.0 / 6.0,
            LossName::L1 => 0.25,
        };
        p * moment * uncomputed / self.importance.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_relu_plus_the_residual_and_zero_at_zero() {
        let t = Task {
            res_factor: 0.5,
            loss: LossName::L2,
            importance: vec![1.0; 3],
        };
        assert_eq!(t.label(0.0f64), 0.0);
        assert_eq!(t.label(0.8f64), 0.8 + 0.4);
        assert_eq!(t.label(-0.8f64), -0.4);
    }

    #[test]
    fn naive_loss_leaves_out_the_most_important_features() {
        let cfg = Config {
            n_feat: 4,
            n_hidden: 2,
            importance: vec![1.0, 4.0, 2.0, 3.0],
            ..Config::default()
        };
        // Features 1 and 3 are computed; 1 + 2 are left, over 4 features.
        let want = 0.01 / 6.0 * 3.0 / 4.0;
        assert!((Task::of(&cfg).naive_loss(2, 0.01) - want).abs() < 1e-15);
    }
}
