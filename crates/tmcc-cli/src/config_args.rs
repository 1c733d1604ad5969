//! Building a config from a preset or a TOML file and command-line flags (flags win).

use std::path::PathBuf;

use anyhow::Context;
use tmcc_model::Config;

/// Config flags shared by the commands that build a model.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConfigArgs {
    /// TOML config file (fields as in config.toml); unspecified fields keep their defaults.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Start from a named preset (`tmcc presets` lists them); flags and --set override it.
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// Set any config field, e.g. `--set p=0.03 --set variant=mix` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Model variant: mlp, res_mlp, emb_mlp, emb_res, emb_res_orth, mix.
    #[arg(long)]
    pub variant: Option<String>,
    /// Base seed (instance k uses seed + k unless seed_per_instance is set).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of instances trained side by side.
    #[arg(long)]
    pub instances: Option<usize>,
    /// Training steps.
    #[arg(long)]
    pub steps: Option<u64>,
}

impl ConfigArgs {
    /// True when no flag but `--steps` is given (what `--resume` accepts).
    pub fn only_steps(&self) -> bool {
        self.config.is_none()
            && self.preset.is_none()
            && self.sets.is_empty()
            && self.variant.is_none()
            && self.seed.is_none()
            && self.instances.is_none()
    }

    pub fn build(&self) -> anyhow::Result<Config> {
        let mut cfg = match (&self.config, &self.preset) {
            (_, Some(name)) => tmcc_model::presets::load(name)?,
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config {}", path.display()))?;
                Config::from_toml_str(&text).with_context(|| path.display().to_string())?
            }
            (None, None) => Config::default(),
        };
        let mut sets: Vec<(String, String)> = Vec::new();
        if let Some(v) = &self.variant {
            sets.push(("variant".into(), v.clone()));
        }
        if let Some(v) = self.seed {
            sets.push(("seed".into(), v.to_string()));
        }
        if let Some(v) = self.instances {
            sets.push(("instances".into(), v.to_string()));
        }
        if let Some(v) = self.steps {
            sets.push(("steps".into(), v.to_string()));
        }
        for s in &self.sets {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--set `{s}`: expected FIELD=VALUE"))?;
            sets.push((k.trim().to_string(), v.trim().to_string()));
        }
        for (k, v) in sets {
            cfg.set_str(&k, &v)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}
