//! The task's options beyond the seed's (docs/science.md#other-toy-models): which labels,
//! which feature values, which law of active features, and importance as a decay. Each is
//! one config field with today's behaviour as its default; [`validate`] checks them and
//! the fields they ignore, one line naming the field.
//!
//! - `labels`: `act_plus_resid` (today) `y = act(c ⊙ x) + r·x`; `abs` `y = |c ⊙ x|`;
//!   `relu` `y = ReLU(c ⊙ x)`. The residual stream of a residual variant still adds `r·x`
//!   to the output, so with `abs`/`relu` labels the MLP must also cancel it (APD's `abs`
//!   label on its residual MLP). All three are 0 where `x` is, so labels stay sparse.
//! - `values`: an active cell is `U[−1, 1]` (`signed`, today) or `U[0, 1]` (`unsigned`,
//!   APD's TMS); both from the same 32 random bits (crate::batch), so the stream
//!   consumption does not depend on the choice.
//! - `data` (per sample of `F` features, `q = 1 − p`):
//!   - `bernoulli` (today): each feature independently active with probability `p`.
//!   - `at_least_one`: Bernoulli(`p`) conditioned on at least one active cell, drawn
//!     directly (no resampling): the first active cell is at `j` with probability
//!     `p·q^j / (1 − q^F)`, `j = 0 … F−1` (inverse CDF of one uniform), and the cells after
//!     it are ordinary Bernoulli(`p`) cells (the geometric walk is memoryless). A feature's
//!     marginal probability is `p / (1 − q^F)`. One `p` per instance applies as in
//!     `bernoulli`.
//!   - `exactly_k` (`exactly_k = k`, `1 ≤ k ≤ F`): a uniformly random set of `k` distinct
//!     features is active (Floyd's algorithm), each feature with marginal probability
//!     `k/F`. `p` plays no part: `p` must stay at its default and `p_per_instance` empty
//!     (else an error naming them), and an instance's `p` reads as `k/F`
//!     ([`Config::instance_p`]), which is the probability the naive loss is taken at.
//!     (A `p` written explicitly equal to the default cannot be told from an unset one.)
//! - `res_factor` set to `r ≠ 0` with `abs`/`relu` labels on a variant without a residual
//!   stream is an error naming it (nothing would use it).
//! - `importance_decay = d`: `imp_f = d^f` (Elhage et al.'s `0.8^i`), instead of the
//!   `importance` list; both at once is an error naming `importance_decay`.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, LossSpace};

/// The labels `y` of an input `x` (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Labels {
    /// `y = act(c ⊙ x) + r·x` (APD's `act_plus_resid`; the seed's `ReLU(x) + r·x`).
    ActPlusResid,
    /// `y = |c ⊙ x|` (APD's `abs`; Elhage et al.'s absolute-value model).
    Abs,
    /// `y = ReLU(c ⊙ x)`, whatever the hidden activation and `r`.
    Relu,
}

/// The law of an active cell's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Values {
    /// `U[−1, 1]`.
    Signed,
    /// `U[0, 1]`.
    Unsigned,
}

impl Values {
    /// The interval `[lo, hi]` of the values.
    pub fn range(self) -> (f64, f64) {
        match self {
            Values::Signed => (-1.0, 1.0),
            Values::Unsigned => (0.0, 1.0),
        }
    }
}

/// Which cells of a sample are active (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataMode {
    Bernoulli,
    AtLeastOne,
    ExactlyK,
}

/// What the sampler needs to know besides each instance's `p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Bernoulli,
    AtLeastOne,
    /// Exactly this many active cells per sample.
    Exactly(usize),
}

/// The law of a batch: which cells are active and the law of their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSpec {
    pub activity: Activity,
    pub values: Values,
}

impl Default for DataSpec {
    /// Today's data: Bernoulli(`p`) cells, `U[−1, 1]` values.
    fn default() -> Self {
        Self {
            activity: Activity::Bernoulli,
            values: Values::Signed,
        }
    }
}

impl DataSpec {
    /// The data law of `cfg` (validated: `exactly_k` is set with `exactly_k` data).
    pub fn of(cfg: &Config) -> Self {
        let activity = match cfg.data {
            DataMode::Bernoulli => Activity::Bernoulli,
            DataMode::AtLeastOne => Activity::AtLeastOne,
            DataMode::ExactlyK => Activity::Exactly(cfg.exactly_k.unwrap_or(1)),
        };
        Self {
            activity,
            values: cfg.values,
        }
    }

    /// The probability that a given feature is active in a sample of `n_feat` features
    /// when the instance's probability is `p`.
    pub fn marginal(&self, p: f64, n_feat: usize) -> f64 {
        match self.activity {
            Activity::Bernoulli => p,
            Activity::AtLeastOne => p / -(n_feat as f64 * (-p).ln_1p()).exp_m1(),
            Activity::Exactly(k) => k as f64 / n_feat as f64,
        }
    }
}

/// Checks the fields of this module and the fields each data mode ignores.
pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let defaults = Config::default();
    if let (Labels::Abs | Labels::Relu, Some(r)) = (cfg.labels, cfg.res_factor) {
        if r != 0.0 && !cfg.variant.has_residual() {
            return Err(ConfigError::new(
                "res_factor",
                format!(
                    "is not used by labels = {:?} without a residual stream (variant {}): leave it unset, got {r}",
                    cfg.labels,
                    cfg.variant.name()
                ),
            ));
        }
    }
    match (cfg.data, cfg.exactly_k) {
        (DataMode::ExactlyK, None) => {
            return Err(ConfigError::new(
                "exactly_k",
                format!("must be set (1..={}) with data = exactly_k", cfg.n_feat),
            ))
        }
        (DataMode::ExactlyK, Some(k)) if !(1..=cfg.n_feat).contains(&k) => {
            return Err(ConfigError::new(
                "exactly_k",
                format!("must be in 1..=n_feat = {}, got {k}", cfg.n_feat),
            ))
        }
        (DataMode::ExactlyK, Some(_)) => {
            if !cfg.p_per_instance.is_empty() {
                return Err(ConfigError::new(
                    "p_per_instance",
                    "is ignored by data = exactly_k (each feature is active with probability exactly_k/n_feat): leave it empty",
                ));
            }
            if cfg.p != defaults.p {
                return Err(ConfigError::new(
                    "p",
                    format!(
                        "is ignored by data = exactly_k (each feature is active with probability exactly_k/n_feat): leave it unset, got {}",
                        cfg.p
                    ),
                ));
            }
        }
        (mode, Some(k)) => {
            return Err(ConfigError::new(
                "exactly_k",
                format!("is only used with data = exactly_k, got {k} with data = {mode:?}"),
            ))
        }
        (_, None) => {}
    }
    if let Some(d) = cfg.importance_decay {
        if !cfg.importance.is_empty() {
            return Err(ConfigError::new(
                "importance_decay",
                "cannot be combined with an `importance` list: give one of them",
            ));
        }
        if !(d.is_finite() && d > 0.0) {
            return Err(ConfigError::new(
                "importance_decay",
                format!("must be finite and > 0, got {d}"),
            ));
        }
        if cfg.loss_space == LossSpace::Resid && d != 1.0 {
            return Err(ConfigError::new(
                "loss_space",
                format!("`resid` needs importance 1 for every feature (APD's resid loss has none), got importance_decay = {d}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(text: &str) -> String {
        let e = Config::from_toml_str(text)
            .and_then(|c| c.validate())
            .unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
        e.field
    }

    #[test]
    fn bad_combinations_name_their_field() {
        for (text, field) in [
            ("data = \"exactly_k\"", "exactly_k"),
            ("data = \"exactly_k\"\nexactly_k = 0", "exactly_k"),
            ("data = \"exactly_k\"\nexactly_k = 101", "exactly_k"),
            ("exactly_k = 2", "exactly_k"),
            ("data = \"at_least_one\"\nexactly_k = 2", "exactly_k"),
            ("data = \"exactly_k\"\nexactly_k = 2\np = 0.1", "p"),
            (
                "data = \"exactly_k\"\nexactly_k = 2\ninstances = 2\np_per_instance = [0.1, 0.2]",
                "p_per_instance",
            ),
            (
                "n_feat = 2\nimportance = [1.0, 0.5]\nimportance_decay = 0.8",
                "importance_decay",
            ),
            ("importance_decay = -0.8", "importance_decay"),
            ("importance_decay = nan", "importance_decay"),
            (
                "loss_space = \"resid\"\nimportance_decay = 0.8",
                "loss_space",
            ),
            (
                "variant = \"mlp\"\nlabels = \"abs\"\nres_factor = 1.0",
                "res_factor",
            ),
        ] {
            assert_eq!(field_of(text), field, "{text}");
        }
        for ok in [
            "data = \"exactly_k\"\nexactly_k = 100",
            "data = \"at_least_one\"\ninstances = 2\np_per_instance = [0.1, 0.001]",
            "labels = \"abs\"\nvalues = \"unsigned\"\nimportance_decay = 0.8",
        ] {
            Config::from_toml_str(ok).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn marginal_probabilities_of_each_mode() {
        let mut d = DataSpec::default();
        assert_eq!(d.marginal(0.01, 100), 0.01);
        d.activity = Activity::AtLeastOne;
        let want = 0.01 / (1.0 - 0.99f64.powi(100));
        assert!((d.marginal(0.01, 100) - want).abs() < 1e-15);
        assert_eq!(d.marginal(1.0, 7), 1.0);
        d.activity = Activity::Exactly(3);
        assert_eq!(d.marginal(0.5, 100), 0.03);
    }
}
