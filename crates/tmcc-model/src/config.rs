//! The run configuration: one flat record of named fields (so a sweep can grid over any
//! of them and a results table has one column per field), read from TOML and/or set field
//! by field, validated with one-line errors that name the field and its allowed range.
//!
//! Per-instance values: instance `k` of `instances` trains with seed
//! `seed_per_instance[k]` (default `seed + k`), probability `p_per_instance[k]` (default
//! `p`) and mixing magnitude `sigma_per_instance[k]` (default `sigma`).

use crate::task::Task;
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::act::Act;
pub use crate::data::{DataMode, Labels, Values};
pub use validate::{ConfigError, MAX_LAYERS};

mod validate;

/// Which member of the model family (docs/science.md#model-family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// No embedding, no residual.
    Mlp,
    /// No embedding; `out = r·x + MLP(x)`.
    ResMlp,
    /// Gaussian embedding, no residual.
    EmbMlp,
    /// Gaussian embedding and residual: the TMCC of APD.
    EmbRes,
    /// As `emb_res` with orthonormal embedding columns (no residual noise).
    EmbResOrth,
    /// No embedding; residual `r·(I + σM)·x` with an explicit mixing matrix `M`.
    Mix,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::Mlp,
        Variant::ResMlp,
        Variant::EmbMlp,
        Variant::EmbRes,
        Variant::EmbResOrth,
        Variant::Mix,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mlp => "mlp",
            Variant::ResMlp => "res_mlp",
            Variant::EmbMlp => "emb_mlp",
            Variant::EmbRes => "emb_res",
            Variant::EmbResOrth => "emb_res_orth",
            Variant::Mix => "mix",
        }
    }
    pub fn has_embedding(self) -> bool {
        matches!(
            self,
            Variant::EmbMlp | Variant::EmbRes | Variant::EmbResOrth
        )
    }
    pub fn has_residual(self) -> bool {
        matches!(
            self,
            Variant::ResMlp | Variant::EmbRes | Variant::EmbResOrth | Variant::Mix
        )
    }
}

/// The mixing matrix `M` of the `mix` variant (`F×F`; diagonal per `mix_diagonal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mixing {
    /// `(A + Aᵀ)/√2`, `A_ij ~ N(0,1)`: off-diagonal entries have unit variance.
    Symmetric,
    /// `A_ij ~ N(0,1)`.
    Asymmetric,
    /// Rank `mix_rank`: `U Uᵀ` or `U Vᵀ` (`mix_rank_form`) of `F×mix_rank` factors with
    /// orthonormal columns (flat spectrum) or Gaussian unit-norm columns
    /// (`mix_flat_spectrum`); the default `U Uᵀ`, flat, is `Q Qᵀ` with orthonormal `Q`.
    Rank,
    /// `+N = W_Eᵀ W_E − I` of a Gaussian embedding of width `mix_d_emb` (tmcc's sign; the
    /// follow-up paper's released code).
    EmbeddingPlus,
    /// `−N = I − W_Eᵀ W_E` (the sign the follow-up paper writes in its figures).
    EmbeddingMinus,
}

/// What becomes of the diagonal of the drawn mixing matrix `M` (crate::init).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixDiagonal {
    /// Set to 0 (tmcc's default until now).
    Zero,
    /// Kept as drawn (the follow-up paper's default; it has a `zero_diagonal` switch).
    Keep,
}

/// The factors of a `rank` mixing matrix: `M = U Uᵀ` or `M = U Vᵀ` (crate::init).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixRankForm {
    /// `U Uᵀ`: symmetric, positive semidefinite before the diagonal is zeroed.
    Uut,
    /// `U Vᵀ` with `V` drawn independently after `U`: asymmetric.
    Uvt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutAct {
    Identity,
    Relu,
    Gelu,
}

/// The label coefficients `c` of `y = act(c ⊙ x) + r·x` (crate::task).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelCoeffs {
    /// `c = 1` (APD's `use_trivial_label_coeffs`; the seed's labels).
    Trivial,
    /// One draw per feature from `U[1, 2)` of the label stream of `label_seed`.
    Uniform,
}

/// Where the loss compares output and label (crate::task).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossSpace {
    /// Feature space: `out` against `y`, times importance (APD's `readoff`).
    Readoff,
    /// The residual stream `s` against `W_E y` (APD's `resid`; importance 1).
    Resid,
}

/// `d_mlp` as written: one width (`25`) or a list (`[25, 25]`).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Widths {
        One(usize),
        Many(Vec<usize>),
    }
    Ok(match Widths::deserialize(d)? {
        Widths::One(w) => vec![w],
        Widths::Many(v) => v,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// `N(0, 2/(fan_in + fan_out))` per matrix (fans of the 2-D matrix, not the seed's 3-D).
    XavierNormal,
    /// `U(±1/√fan_in)`: PyTorch's `nn.Linear` default (`kaiming_uniform_`, `a = √5`).
    KaimingUniform,
    /// `N(0, init_std²)`.
    Normal,
    /// `U(±init_bound)` for `W1`, `U(±init_bound_out)` for `W2` (absent: `init_bound`): an
    /// explicit bound, so that a paper's fan convention can be written down as a number.
    Uniform,
    /// The seed notebook's convention: PyTorch's `xavier_normal_` on its `[1, rows, cols]`
    /// tensor (one instance), whose fans are `rows·cols` and `cols`, so
    /// `std = √(2/(rows·cols + cols))`: 0.0063 for W1 and W2 of the TMCC (2-D: 0.044).
    XavierNormalSeed3d,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    L2,
    L1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Adam,
    /// Adam with decoupled weight decay `weight_decay`.
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Half-period cosine from `lr` to 0 over the steps after warm-up (torch's
    /// `CosineAnnealingLR`; the follow-up paper). Also accepted as `cosine_half`.
    #[serde(alias = "cosine_half")]
    Cosine,
    /// APD's quarter-period cosine `lr·cos(π/2 · t/(T−1))`: 0 at the last step.
    CosineQuarter,
    /// Linear decay from `lr` to 0 over the steps after warm-up.
    Linear,
}

/// Everything that determines a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub variant: Variant,
    pub n_feat: usize,
    /// Width of every block unless `d_mlp` is set.
    pub n_hidden: usize,
    /// Number of residual blocks `L` (`> 1` only with a residual stream).
    pub n_layers: usize,
    /// Block widths: empty (every block `n_hidden`), one width for every block, or `L`
    /// widths; written as a number or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub d_mlp: Vec<usize>,
    /// The hidden activation, also the labels' (`y = act(c ⊙ x) + r·x`).
    pub act: Act,
    pub label_coeffs: LabelCoeffs,
    /// Seed of the `uniform` label coefficients (one set per run, not per instance).
    pub label_seed: u64,
    /// Embedding width `D` (embedding variants only).
    pub d_emb: usize,
    /// Probability that a feature is active.
    pub p: f64,
    /// Residual factor `r` of labels and residual stream; absent: 0 for `mlp` and
    /// `emb_mlp`, 1 otherwise.
    pub res_factor: Option<f64>,
    pub mixing: Mixing,
    pub sigma: f64,
    pub mix_rank: usize,
    /// `mixing = rank` only: `U Uᵀ` or `U Vᵀ`.
    pub mix_rank_form: MixRankForm,
    /// `mixing = rank` only: orthonormal factor columns (all `mix_rank` singular values 1
    /// for `U Uᵀ` and `U Vᵀ` alike) or Gaussian unit-norm columns (a spread spectrum).
    pub mix_flat_spectrum: bool,
    /// `mix` only: zero or keep the diagonal of `M`. Default `zero` (tmcc's behaviour so
    /// far); the follow-up paper's default is `keep`.
    pub mix_diagonal: MixDiagonal,
    /// `mix` only: train `σ` jointly with the weights, one per instance, starting from
    /// `sigma_per_instance[k]` (default `sigma`); it is the checkpoint's tensor `sigma`.
    /// Trains on the dense reference path.
    pub learn_sigma: bool,
    /// `learn_sigma` only: whether AdamW's weight decay applies to `σ` as to the weights.
    pub sigma_weight_decay: bool,
    pub mix_d_emb: usize,
    pub bias1: bool,
    pub bias2: bool,
    /// `W2 = W1ᵀ`.
    pub tied: bool,
    pub out_act: OutAct,
    pub init: Init,
    pub init_std: f64,
    /// Bound of the `uniform` init for `W1` (and `W2` unless `init_bound_out` is set).
    pub init_bound: f64,
    /// Bound of the `uniform` init for `W2`; absent: `init_bound`.
    pub init_bound_out: Option<f64>,
    pub loss: LossName,
    pub loss_space: LossSpace,
    /// Per-feature importance (empty: all 1, or `importance_decay^f`).
    pub importance: Vec<f64>,
    /// `imp_f = importance_decay^f` instead of a list (crate::data).
    pub importance_decay: Option<f64>,
    /// Labels, feature values and the law of active features (crate::data).
    pub labels: Labels,
    pub values: Values,
    pub data: DataMode,
    /// Active features per sample with `data = exactly_k`.
    pub exactly_k: Option<usize>,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub schedule: Schedule,
    pub warmup_steps: u64,
    pub batch_size: usize,
    pub steps: u64,
    pub seed: u64,
    pub instances: usize,
    pub seed_per_instance: Vec<u64>,
    pub p_per_instance: Vec<f64>,
    pub sigma_per_instance: Vec<f64>,
    pub eval_samples: usize,
    pub eval_batch: usize,
    pub eval_seed: u64,
    pub log_every: u64,
}

impl Default for Config {
    /// The seed notebook's setting with APD's TMCC (`emb_res`, `r = 1`).
    fn default() -> Self {
        Self {
            variant: Variant::EmbRes,
            n_feat: 100,
            n_hidden: 50,
            n_layers: 1,
            d_mlp: Vec::new(),
            act: Act::Relu,
            label_coeffs: LabelCoeffs::Trivial,
            label_seed: 0,
            d_emb: 1000,
            p: 0.01,
            res_factor: None,
            mixing: Mixing::Symmetric,
            sigma: 0.03,
            mix_rank: 10,
            mix_rank_form: MixRankForm::Uut,
            mix_flat_spectrum: true,
            mix_diagonal: MixDiagonal::Zero,
            learn_sigma: false,
            sigma_weight_decay: true,
            mix_d_emb: 1000,
            bias1: false,
            bias2: false,
            tied: false,
            out_act: OutAct::Identity,
            init: Init::XavierNormal,
            init_std: 0.02,
            init_bound: 0.1,
            init_bound_out: None,
            loss: LossName::L2,
            loss_space: LossSpace::Readoff,
            importance: Vec::new(),
            importance_decay: None,
            labels: Labels::ActPlusResid,
            values: Values::Signed,
            data: DataMode::Bernoulli,
            exactly_k: None,
            optimizer: Optimizer::Adam,
            lr: 5e-4,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            batch_size: 1024,
            steps: 20_000,
            seed: 0,
            instances: 1,
            seed_per_instance: Vec::new(),
            p_per_instance: Vec::new(),
            sigma_per_instance: Vec::new(),
            eval_samples: 1_000_000,
            eval_batch: 8192,
            eval_seed: 1_000_003,
            log_every: 100,
        }
    }
}

impl Config {
    /// Names of all fields, in declaration order.
    pub fn field_names() -> Vec<String> {
        let full = Config {
            res_factor: Some(0.0),
            init_bound_out: Some(0.0),
            importance_decay: Some(1.0),
            exactly_k: Some(1),
            ..Config::default()
        };
        match toml::Value::try_from(&full) {
            Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => unreachable!("a Config always serializes to a table"),
        }
    }

    /// Sets one field from a TOML value, e.g. `set("p", 0.03.into())`.
    pub fn set(&mut self, field: &str, value: toml::Value) -> Result<(), ConfigError> {
        if !Self::field_names().iter().any(|f| f == field) {
            return Err(ConfigError::new(
                field,
                format!(
                    "unknown field; known fields: {}",
                    Self::field_names().join(", ")
                ),
            ));
        }
        let mut table = match toml::Value::try_from(&*self) {
            Ok(toml::Value::Table(t)) => t,
            _ => unreachable!("a Config always serializes to a table"),
        };
        table.insert(field.to_string(), value);
        *self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::new(field, e.message().trim()))?;
        Ok(())
    }

    /// Sets one field from text as typed on a command line: a TOML value (`0.01`,
    /// `true`, `[1, 2]`, `"l1"`) or, failing that, a bare string (`l1`).
    pub fn set_str(&mut self, field: &str, text: &str) -> Result<(), ConfigError> {
        let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(text.to_string()));
        self.set(field, value)
    }

    /// Parses a TOML document of fields over the defaults. Errors name the field (or the
    /// line of a syntax error) on one line.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::toml_syntax(text, &e))?;
        let mut cfg = Config::default();
        for (k, v) in table {
            cfg.set(&k, v)?;
        }
        Ok(cfg)
    }

    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a Config always serializes")
    }

    /// The residual factor `r` in force.
    pub fn res_factor(&self) -> f64 {
        self.res_factor.unwrap_or(match self.variant {
            Variant::Mlp | Variant::EmbMlp => 0.0,
            _ => 1.0,
        })
    }

    /// The width `H_l` of every block.
    pub fn widths(&self) -> Vec<usize> {
        match self.d_mlp.len() {
            0 => vec![self.n_hidden; self.n_layers],
            1 => vec![self.d_mlp[0]; self.n_layers],
            _ => self.d_mlp.clone(),
        }
    }

    /// `Σ_l H_l`, the neurons of all blocks.
    pub fn total_hidden(&self) -> usize {
        self.widths().iter().sum()
    }

    /// The output activation, `None` for the identity.
    pub fn out_activation(&self) -> Option<Act> {
        match self.out_act {
            OutAct::Identity => None,
            OutAct::Relu => Some(Act::Relu),
            OutAct::Gelu => Some(Act::Gelu),
        }
    }

    /// Input width `D` of the MLP.
    pub fn d_in(&self) -> usize {
        if self.variant.has_embedding() {
            self.d_emb
        } else {
            self.n_feat
        }
    }

    pub fn instance_seed(&self, k: usize) -> u64 {
        self.seed_per_instance
            .get(k)
            .copied()
            .unwrap_or(self.seed.wrapping_add(k as u64))
    }
    /// Instance `k`'s feature probability; with `exactly_k` data, `k/F` (crate::data).
    pub fn instance_p(&self, k: usize) -> f64 {
        match (self.data, self.exactly_k) {
            (DataMode::ExactlyK, Some(n)) => n as f64 / self.n_feat as f64,
            _ => self.p_per_instance.get(k).copied().unwrap_or(self.p),
        }
    }
    pub fn instance_sigma(&self, k: usize) -> f64 {
        self.sigma_per_instance
            .get(k)
            .copied()
            .unwrap_or(self.sigma)
    }

    /// Importance of feature `f`.
    pub fn importance_of(&self, f: usize) -> f64 {
        match self.importance_decay {
            Some(d) => d.powi(f as i32),
            None => self.importance.get(f).copied().unwrap_or(1.0),
        }
    }

    /// The task this config trains on ([`Task`]: labels, loss, importance).
    pub fn task(&self) -> Task {
        Task::of(self)
    }

    /// Loss of the naive model at probability `p` ([`Task::naive_loss`] with `Σ_l H_l`
    /// neurons: `(1 − ΣH_l/F)·p/6` for ReLU, L2, importance and coefficients 1).
    pub fn naive_loss(&self, p: f64) -> f64 {
        self.task().naive_loss(self.total_hidden(), p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = Config::default();
        c.validate().unwrap();
        let back = Config::from_toml_str(&c.to_toml_string()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn naive_loss_matches_science_md() {
        let c = Config::default();
        let want = (1.0 - 50.0 / 100.0) * 0.01 / 6.0;
        assert!((c.naive_loss(0.01) - want).abs() < 1e-15);
        // L blocks of widths H_l: (1 − ΣH_l/F)·p/6 (the baseline for APD's targets).
        let deep = Config {
            n_feat: 102,
            n_layers: 3,
            d_mlp: vec![17],
            ..Config::default()
        };
        let want = (1.0 - 51.0 / 102.0) * 0.01 / 6.0;
        assert!((deep.naive_loss(0.01) - want).abs() < 1e-15);
    }

    #[test]
    fn d_mlp_is_a_number_or_a_list_and_bad_shapes_name_the_field() {
        let c = Config::from_toml_str("n_layers = 2\nd_mlp = 25").unwrap();
        assert_eq!(c.widths(), vec![25, 25]);
        let c = Config::from_toml_str("n_layers = 3\nd_mlp = [4, 5, 6]").unwrap();
        assert_eq!((c.widths(), c.total_hidden()), (vec![4, 5, 6], 15));
        c.validate().unwrap();
        let back = Config::from_toml_str(&c.to_toml_string()).unwrap();
        assert_eq!(back, c);
        for (text, field) in [
            ("n_layers = 3\nd_mlp = [4, 5]", "d_mlp"),
            ("n_layers = 2\nd_mlp = [4, 0]", "d_mlp"),
            ("n_layers = 0", "n_layers"),
            ("n_layers = 100000000000", "n_layers"),
            ("d_mlp = 30", "d_mlp"),
            ("n_layers = 2\nvariant = \"emb_mlp\"", "n_layers"),
            (
                "loss_space = \"resid\"\nn_feat = 2\nimportance = [1.0, 0.5]",
                "loss_space",
            ),
            ("loss_space = \"resid\"\nvariant = \"mix\"", "loss_space"),
        ] {
            let e = Config::from_toml_str(text)
                .and_then(|c| c.validate())
                .unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn set_str_parses_values_and_names_the_field() {
        let mut c = Config::default();
        c.set_str("variant", "mix").unwrap();
        c.set_str("p", "0.03").unwrap();
        c.set_str("lr", "1").unwrap();
        c.set_str("p_per_instance", "[0.1, 0.2]").unwrap();
        assert_eq!((c.variant, c.p, c.lr), (Variant::Mix, 0.03, 1.0));
        let e = c.set_str("variant", "bogus").unwrap_err();
        assert_eq!(e.field, "variant");
        let e = c.set_str("nope", "1").unwrap_err();
        assert_eq!(e.field, "nope");
        assert!(!e.to_string().contains('\n'));
    }
}
