//! `tmcc.Config`: the run configuration of `tmcc_model::Config`, built from keyword
//! arguments through serde, so every field the Rust config has (now or later) is a keyword
//! with no binding code of its own.
//!
//! `Config(**fields)` starts from the defaults (the seed setting) and sets each field from
//! its Python value (`values::to_toml`, then `Config::set`: unknown fields and values of
//! the wrong type are rejected there), then validates the whole config
//! (`Config::validate`). `None` resets a field to its default (`res_factor=None`: the
//! variant's default). Every error is one line naming the field. A `Config` is immutable:
//! `replace(**fields)` makes a changed copy. `preset(name, **overrides)` starts from a
//! named preset (`tmcc_model::presets`) instead of the defaults.

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tmcc_model::Config;

use crate::errors::{config_error, IntoPy};
use crate::values::{json_to_py, to_toml};

#[pyclass(name = "Config", module = "tmcc", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyConfig {
    pub cfg: Config,
}

/// `cfg` with `fields` set (in order) and validated.
pub fn with_fields(mut cfg: Config, fields: Option<&Bound<PyDict>>) -> PyResult<Config> {
    for (key, value) in fields.into_iter().flat_map(|d| d.iter()) {
        let field: String = key.extract()?;
        if value.is_none() {
            cfg = reset(&cfg, &field)?;
        } else {
            cfg.set(&field, to_toml(&field, &value)?).py_err()?;
        }
    }
    cfg.validate().py_err()?;
    Ok(cfg)
}

/// `cfg` with `field` back at its default (serde fills in a missing field).
fn reset(cfg: &Config, field: &str) -> PyResult<Config> {
    let known = Config::field_names();
    if !known.iter().any(|f| f == field) {
        return Err(config_error(
            field,
            &format!("unknown field; known fields: {}", known.join(", ")),
        ));
    }
    let mut table = toml::Table::try_from(cfg).expect("a Config serializes to a table");
    table.remove(field);
    table
        .try_into()
        .map_err(|e: toml::de::Error| config_error(field, e.message().trim()))
}

impl PyConfig {
    /// Every field as a JSON object (`res_factor` unset: `null`).
    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(&self.cfg) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => unreachable!("a Config serializes to an object"),
        }
    }
}

#[pymethods]
impl PyConfig {
    /// The defaults (the seed setting) with `fields` set; validated.
    #[new]
    #[pyo3(signature = (**fields))]
    fn new(fields: Option<&Bound<PyDict>>) -> PyResult<Self> {
        Ok(Self {
            cfg: with_fields(Config::default(), fields)?,
        })
    }

    /// A copy with `fields` changed; validated.
    #[pyo3(signature = (**fields))]
    fn replace(&self, fields: Option<&Bound<PyDict>>) -> PyResult<Self> {
        Ok(Self {
            cfg: with_fields(self.cfg.clone(), fields)?,
        })
    }

    /// The config in the TOML of `config.toml`.
    fn to_toml(&self) -> String {
        self.cfg.to_toml_string()
    }

    /// A config from TOML text (fields over the defaults), validated.
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        let cfg = Config::from_toml_str(text).py_err()?;
        cfg.validate().py_err()?;
        Ok(Self { cfg })
    }

    /// Every field and its value (`res_factor`: `None` when the variant's default applies).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::Value::Object(self.json()))
    }

    /// The names of all fields.
    #[staticmethod]
    fn fields() -> Vec<String> {
        Config::field_names()
    }

    /// The loss of the naive model at probability `p` (default: the config's `p`).
    #[pyo3(signature = (p=None))]
    fn naive_loss(&self, p: Option<f64>) -> f64 {
        self.cfg.naive_loss(p.unwrap_or(self.cfg.p))
    }

    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.json().get(name) {
            Some(v) => json_to_py(py, v),
            None => Err(PyAttributeError::new_err(format!(
                "Config has no field `{name}`; fields: {}",
                Config::field_names().join(", ")
            ))),
        }
    }

    fn __dir__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let names = PyList::new(slf.py(), Config::field_names())?;
        for n in slf.get_type().dir()? {
            names.append(n)?;
        }
        Ok(names)
    }

    /// `Config(field=value, …)` with the fields that differ from the defaults.
    fn __repr__(&self) -> String {
        let default = PyConfig {
            cfg: Config::default(),
        }
        .json();
        let changed: Vec<String> = self
            .json()
            .into_iter()
            .filter(|(k, v)| default.get(k) != Some(v))
            .map(|(k, v)| format!("{k}={}", python_literal(&v)))
            .collect();
        format!("Config({})", changed.join(", "))
    }
}

/// A JSON value as a Python literal (`true` → `True`, `null` → `None`, strings quoted).
fn python_literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "None".into(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::String(s) => format!("{s:?}").replacen('"', "'", 2),
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(python_literal).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The config of preset `name` (`presets/NAME.toml`, as `tmcc train --preset NAME`) with
/// `overrides` set; validated. An unknown name is a `ConfigError` listing the known ones.
#[pyfunction]
#[pyo3(signature = (name, **overrides))]
pub fn preset(name: &str, overrides: Option<&Bound<PyDict>>) -> PyResult<PyConfig> {
    let base = tmcc_model::presets::load(name).py_err()?;
    Ok(PyConfig {
        cfg: with_fields(base, overrides)?,
    })
}

/// Every preset's name and one-line summary, in a fixed order.
#[pyfunction]
pub fn presets() -> Vec<(String, String)> {
    tmcc_model::presets::all()
        .iter()
        .map(|p| (p.name.to_string(), p.summary.to_string()))
        .collect()
}
