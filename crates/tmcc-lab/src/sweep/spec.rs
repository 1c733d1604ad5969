//! The sweep file and its grid: parsing (every error names its field, on one line), the
//! order of the axes, the expansion into one validated config per run, and the sweep's
//! fingerprint. See the [module docs](super) for the run order.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tmcc_model::{Config, ConfigError};

/// Most runs one sweep may expand to.
pub const MAX_RUNS: usize = 1_000_000;

/// The fields that may differ between the instances of one group, in axis order.
pub const INSTANCE_AXES: [&str; 3] = ["p", "sigma", "seed"];
/// Fields a sweep fixes: every run is one instance.
pub const NOT_SWEPT: [&str; 4] = [
    "instances",
    "seed_per_instance",
    "p_per_instance",
    "sigma_per_instance",
];
/// One swept field and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub field: String,
    pub values: Vec<Value>,
}

/// A parsed sweep file: the base config and the axes of its grid.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    pub base: Config,
    /// In run order (see the module docs).
    pub axes: Vec<Axis>,
    toml_axes: Vec<Vec<toml::Value>>,
}

fn axis_rank(field: &str) -> (usize, String) {
    match INSTANCE_AXES.iter().position(|f| *f == field) {
        Some(i) => (1 + i, String::new()),
        None => (0, field.to_string()),
    }
}

/// FNV-1a, 64 bit: a stable fingerprint (not a cryptographic hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl SweepSpec {
    /// Parses a sweep file. Every error names the field it is about, on one line.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::toml_syntax(text, &e))?;
        let grid = match table.remove("grid") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(ConfigError::new(
                    "grid",
                    "must be a table of `field = [values]`",
                ))
            }
        };
        // `preset = "NAME"`: the base starts from that preset instead of the defaults.
        let mut base = match table.remove("preset") {
            None => Config::default(),
            Some(toml::Value::String(name)) => tmcc_model::presets::load(&name)?,
            Some(_) => {
                return Err(ConfigError::new(
                    "preset",
                    "must be a preset name (a string; `tmcc presets` lists them)",
                ))
            }
        };
        for (k, v) in table {
            base.set(&k, v)?;
        }
        if base.instances != 1 {
            return Err(ConfigError::new(
                "instances",
                format!(
                    "must be 1 in a sweep file (each run is one model; sweep `seed` for replicates), got {}",
                    base.instances
                ),
            ));
        }
        for f in &NOT_SWEPT[1..] {
            let empty = match *f {
                "seed_per_instance" => base.seed_per_instance.is_empty(),
                "p_per_instance" => base.p_per_instance.is_empty(),
                _ => base.sigma_per_instance.is_empty(),
            };
            if !empty {
                return Err(ConfigError::new(
                    f,
                    "must be empty in a sweep file (each run is one model; sweep `seed`, `p` or `sigma`)",
                ));
            }
        }
        let known = Config::field_names();
        let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
        for (field, values) in grid {
            if NOT_SWEPT.contains(&field.as_str()) {
                return Err(ConfigError::new(
                    &field,
                    "cannot be swept (each run is one model; sweep `seed`, `p` or `sigma`)",
                ));
            }
            if !known.contains(&field) {
                return Err(ConfigError::new(
                    &field,
                    format!(
                        "unknown field in [grid]; known fields: {}",
                        known.join(", ")
                    ),
                ));
            }
            let values = match values {
                toml::Value::Array(a) if !a.is_empty() => a,
                _ => {
                    return Err(ConfigError::new(
                        &field,
                        "[grid] values must be a non-empty array, e.g. `p = [0.01, 0.03]`",
                    ))
                }
            };
            for (i, v) in values.iter().enumerate() {
                if values[..i].contains(v) {
                    return Err(ConfigError::new(
                        &field,
                        format!("[grid] lists the value {v} twice"),
                    ));
                }
                base.clone().set(&field, v.clone())?;
            }
            axes.push((field, values));
        }
        axes.sort_by_key(|(f, _)| axis_rank(f));
        axes.iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()))
            .filter(|&n| n <= MAX_RUNS)
            .ok_or_else(|| {
                ConfigError::new("grid", format!("expands to more than {MAX_RUNS} runs"))
            })?;
        let json_axes = axes
            .iter()
            .map(|(field, values)| Axis {
                field: field.clone(),
                values: values
                    .iter()
                    .map(|v| serde_json::to_value(v).expect("TOML values are JSON values"))
                    .collect(),
            })
            .collect();
        Ok(Self {
            base,
            axes: json_axes,
            toml_axes: axes.into_iter().map(|(_, v)| v).collect(),
        })
    }

    /// Number of runs the grid expands to.
    pub fn n_runs(&self) -> usize {
        self.toml_axes.iter().map(Vec::len).product()
    }

    /// A fingerprint of what the sweep computes: the base config (with defaults filled in)
    /// and the axes in run order. Comments and layout of the file do not change it.
    pub fn hash(&self) -> String {
        let mut canon = self.base.to_toml_string();
        for a in &self.axes {
            canon += &format!("\n{} = {}", a.field, Value::Array(a.values.clone()));
        }
        format!("fnv1a64:{:016x}", fnv1a(canon.as_bytes()))
    }

    /// The config of run `index`, validated; an error names the field and the run.
    pub fn run(&self, index: usize) -> Result<Config, ConfigError> {
        let mut cfg = self.base.clone();
        let mut rest = index;
        let mut desc = Vec::new();
        for (axis, values) in self.axes.iter().zip(&self.toml_axes).rev() {
            let v = &values[rest % values.len()];
            rest /= values.len();
            cfg.set(&axis.field, v.clone())?;
            desc.push(format!("{} = {v}", axis.field));
        }
        desc.reverse();
        cfg.validate().map_err(|e| {
            ConfigError::new(
                &e.field,
                format!("{} (run {index}: {})", e.message, desc.join(", ")),
            )
        })?;
        Ok(cfg)
    }

    /// Every run's config, validated (the first bad run is reported).
    pub fn expand(&self) -> Result<Vec<Config>, ConfigError> {
        (0..self.n_runs()).map(|i| self.run(i)).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const FILE: &str = r#"
        n_feat = 8
        n_hidden = 4
        [grid]
        seed = [0, 1]
        variant = ["mlp", "emb_res"]
        p = [0.1, 0.2]
    "#;

    #[test]
    fn hash_ignores_layout_and_comments() {
        let a = SweepSpec::from_toml_str(FILE).unwrap();
        let b = SweepSpec::from_toml_str(&format!("# note\n{FILE}")).unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = SweepSpec::from_toml_str(&FILE.replace("0.2]", "0.3]")).unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn a_preset_is_the_base_and_fields_override_it() {
        let spec =
            SweepSpec::from_toml_str("preset = \"apd-1layer\"\nsteps = 7\n[grid]\nseed = [0, 1]")
                .unwrap();
        let want = Config {
            steps: 7,
            ..tmcc_model::presets::load("apd-1layer").unwrap()
        };
        assert_eq!(spec.base, want);
    }

    #[test]
    fn errors_name_the_field() {
        for (text, field) in [
            ("[grid]\np = [0.1, 2.0]", "p"),
            ("[grid]\nbogus = [1]", "bogus"),
            ("[grid]\ninstances = [1, 2]", "instances"),
            ("instances = 2", "instances"),
            ("[grid]\np = 0.1", "p"),
            ("[grid]\nvariant = [\"emb_res\", \"nope\"]", "variant"),
            ("grid = 3", "grid"),
            ("p = [", "<toml>"),
            ("preset = \"nope\"", "preset"),
            ("preset = 3", "preset"),
        ] {
            let e = SweepSpec::from_toml_str(text)
                .and_then(|s| s.expand().map(|_| ()))
                .unwrap_err();
            assert_eq!(e.field, field, "{text}");
        }
    }
}
