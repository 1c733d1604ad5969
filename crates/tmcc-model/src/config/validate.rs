//! What a valid [`Config`] is: [`Config::validate`] checks every field and returns the
//! first violation as a [`ConfigError`], one line that names the field and its allowed
//! range, e.g. ``invalid config field `n_feat`: must be ≥ 1, got 0``.

use super::*;

/// A bad config: which field, and what is allowed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("invalid config field `{field}`: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A TOML syntax error in the document `text`, on one line with its line number (the
    /// field is `<toml>`): every TOML file tmcc reads reports its syntax errors this way.
    pub fn toml_syntax(text: &str, e: &toml::de::Error) -> Self {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        Self::new(
            "<toml>",
            format!("syntax error at line {line}: {}", e.message().trim()),
        )
    }
}

/// The deepest model a config may ask for (far beyond the papers' 3 blocks; a bound so that
/// a typo cannot make `widths` allocate without limit).
pub const MAX_LAYERS: usize = 256;

fn check(ok: bool, field: &str, msg: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, msg()))
    }
}

fn check_p(field: &str, p: f64) -> Result<(), ConfigError> {
    check(p.is_finite() && p > 0.0 && p <= 1.0, field, || {
        format!("must be in (0, 1], got {p}")
    })
}

fn check_per_instance(field: &str, len: usize, instances: usize) -> Result<(), ConfigError> {
    check(len == 0 || len == instances, field, || {
        format!("must be empty or have `instances` = {instances} entries, got {len}")
    })
}

impl Config {
    /// Checks every field; the first violation is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pos = |field: &str, v: usize| check(v >= 1, field, || format!("must be ≥ 1, got {v}"));
        pos("n_feat", self.n_feat)?;
        pos("n_hidden", self.n_hidden)?;
        pos("batch_size", self.batch_size)?;
        pos("instances", self.instances)?;
        pos("eval_samples", self.eval_samples)?;
        pos("eval_batch", self.eval_batch)?;
        check(self.steps >= 1, "steps", || {
            format!("must be ≥ 1, got {}", self.steps)
        })?;
        check(self.log_every >= 1, "log_every", || {
            format!("must be ≥ 1, got {}", self.log_every)
        })?;
        check(
            (1..=MAX_LAYERS).contains(&self.n_layers),
            "n_layers",
            || format!("must be in 1..={MAX_LAYERS}, got {}", self.n_layers),
        )?;
        check(
            self.d_mlp.len() <= 1 || self.d_mlp.len() == self.n_layers,
            "d_mlp",
            || {
                format!(
                    "must be one width or n_layers = {} widths, got {} widths",
                    self.n_layers,
                    self.d_mlp.len()
                )
            },
        )?;
        check(self.n_layers > 1 || self.d_mlp.is_empty(), "d_mlp", || {
            format!(
                "must be empty with n_layers = 1 (one block's width is n_hidden), got {:?}",
                self.d_mlp
            )
        })?;
        if let Some(l) = self.d_mlp.iter().position(|&w| w == 0) {
            return Err(ConfigError::new(
                "d_mlp",
                format!("widths must be ≥ 1, got 0 (block {l})"),
            ));
        }
        check(
            self.n_layers == 1 || self.variant.has_residual(),
            "n_layers",
            || {
                format!(
                    "must be 1 for `{}` (deeper models need a residual stream: res_mlp, emb_res, emb_res_orth, mix), got {}",
                    self.variant.name(),
                    self.n_layers
                )
            },
        )?;
        if self.loss_space == LossSpace::Resid {
            if let Some(f) = self.importance.iter().position(|&w| w != 1.0) {
                return Err(ConfigError::new(
                    "loss_space",
                    format!(
                        "`resid` needs importance 1 for every feature (APD's resid loss has none), got importance[{f}] = {}",
                        self.importance[f]
                    ),
                ));
            }
            check(
                self.out_act == OutAct::Identity && self.variant != Variant::Mix,
                "loss_space",
                || {
                    format!(
                        "`resid` compares the residual stream itself: needs out_act = identity and a variant other than mix, got out_act = {:?}, variant = {}",
                        self.out_act,
                        self.variant.name()
                    )
                },
            )?;
        }
        if self.variant.has_embedding() {
            pos("d_emb", self.d_emb)?;
        }
        if self.variant == Variant::EmbResOrth {
            check(self.d_emb >= self.n_feat, "d_emb", || {
                format!(
                    "must be ≥ n_feat = {} for an orthogonal embedding, got {}",
                    self.n_feat, self.d_emb
                )
            })?;
        }
        check_p("p", self.p)?;
        crate::data::validate(self)?;
        if let Some(r) = self.res_factor {
            check(r.is_finite(), "res_factor", || {
                format!("must be finite, got {r}")
            })?;
        }
        check(self.sigma.is_finite(), "sigma", || {
            format!("must be finite, got {}", self.sigma)
        })?;
        if self.variant != Variant::Mix {
            check(
                self.mix_diagonal == MixDiagonal::Zero,
                "mix_diagonal",
                || {
                    "must be \"zero\" (allowed: \"zero\", \"keep\") unless variant = \"mix\"; \
                 the other variants have no mixing matrix"
                        .to_string()
                },
            )?;
        }
        check(
            !self.learn_sigma || self.variant == Variant::Mix,
            "learn_sigma",
            || {
                "must be false (allowed: true, false) unless variant = \"mix\"; only mix \
                 has a mixing magnitude σ"
                    .to_string()
            },
        )?;
        check(
            self.sigma_weight_decay || self.learn_sigma,
            "sigma_weight_decay",
            || "must be true (allowed: true, false) unless learn_sigma = true".to_string(),
        )?;
        if self.variant != Variant::Mix || self.mixing != Mixing::Rank {
            check(
                self.mix_rank_form == MixRankForm::Uut,
                "mix_rank_form",
                || {
                    "must be \"uut\" (allowed: \"uut\", \"uvt\") unless variant = \"mix\" and \
                 mixing = \"rank\""
                        .to_string()
                },
            )?;
            check(self.mix_flat_spectrum, "mix_flat_spectrum", || {
                "must be true (allowed: true, false) unless variant = \"mix\" and \
                 mixing = \"rank\""
                    .to_string()
            })?;
        }
        if self.variant == Variant::Mix {
            match self.mixing {
                Mixing::Rank => check(
                    (1..=self.n_feat).contains(&self.mix_rank),
                    "mix_rank",
                    || format!("must be in 1..={}, got {}", self.n_feat, self.mix_rank),
                )?,
                Mixing::EmbeddingPlus | Mixing::EmbeddingMinus => pos("mix_d_emb", self.mix_d_emb)?,
                Mixing::Symmetric | Mixing::Asymmetric => {}
            }
        }
        if self.init == Init::Normal {
            check(
                self.init_std.is_finite() && self.init_std > 0.0,
                "init_std",
                || format!("must be finite and > 0, got {}", self.init_std),
            )?;
        }
        if self.init == Init::Uniform {
            let bounds = [
                ("init_bound", Some(self.init_bound)),
                ("init_bound_out", self.init_bound_out),
            ];
            for (field, bound) in bounds {
                if let Some(b) = bound {
                    check(b.is_finite() && b > 0.0, field, || {
                        format!("must be finite and > 0 for init = uniform, got {b}")
                    })?;
                }
            }
        }
        check(
            self.importance.is_empty() || self.importance.len() == self.n_feat,
            "importance",
            || {
                format!(
                    "must be empty or have n_feat = {} entries, got {}",
                    self.n_feat,
                    self.importance.len()
                )
            },
        )?;
        if let Some(w) = self
            .importance
            .iter()
            .find(|w| !(w.is_finite() && **w >= 0.0))
        {
            return Err(ConfigError::new(
                "importance",
                format!("entries must be finite and ≥ 0, got {w}"),
            ));
        }
        check(self.lr.is_finite() && self.lr > 0.0, "lr", || {
            format!("must be finite and > 0, got {}", self.lr)
        })?;
        check(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "weight_decay",
            || format!("must be finite and ≥ 0, got {}", self.weight_decay),
        )?;
        for (field, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            check((0.0..1.0).contains(&b), field, || {
                format!("must be in [0, 1), got {b}")
            })?;
        }
        check(self.eps.is_finite() && self.eps > 0.0, "eps", || {
            format!("must be finite and > 0, got {}", self.eps)
        })?;
        check(self.warmup_steps <= self.steps, "warmup_steps", || {
            format!(
                "must be ≤ steps = {}, got {}",
                self.steps, self.warmup_steps
            )
        })?;
        let cells = (self.batch_size as u128)
            .max(self.eval_batch as u128)
            .saturating_mul(self.instances as u128)
            .saturating_mul(self.n_feat as u128);
        check(cells < u32::MAX as u128, "batch_size", || {
            format!(
                "batch_size·instances·n_feat must be < 2^32 (sparse indices are u32), got {cells}"
            )
        })?;
        check_per_instance(
            "seed_per_instance",
            self.seed_per_instance.len(),
            self.instances,
        )?;
        check_per_instance("p_per_instance", self.p_per_instance.len(), self.instances)?;
        check_per_instance(
            "sigma_per_instance",
            self.sigma_per_instance.len(),
            self.instances,
        )?;
        for &p in &self.p_per_instance {
            check_p("p_per_instance", p)?;
        }
        if let Some(s) = self.sigma_per_instance.iter().find(|s| !s.is_finite()) {
            return Err(ConfigError::new(
                "sigma_per_instance",
                format!("entries must be finite, got {s}"),
            ));
        }
        // Sizes must be countable without overflow (the memory check then judges them).
        let (f, h, d) = (
            self.n_feat as u128,
            self.n_hidden as u128,
            self.d_in() as u128,
        );
        let per_instance = 2 * h * d + h + d + d * f + f * f;
        let elements = per_instance.saturating_mul(self.instances as u128);
        let field = match (per_instance < 1 << 56, h >= f, d > f) {
            (true, _, _) => "instances",
            (false, true, _) => "n_hidden",
            (false, false, true) => "d_emb",
            (false, false, false) => "n_feat",
        };
        check(elements < 1 << 56, field, || {
            format!(
                "the model's tensors must have < 2^56 elements in all, got {elements} \
                 (instances·(2·n_hidden·D + D·n_feat + n_feat²))"
            )
        })?;
        Ok(())
    }
}
