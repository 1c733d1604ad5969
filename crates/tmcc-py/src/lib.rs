//! The `tmcc` Python module: the lab from a notebook, numpy arrays in and out.
//!
//! | Python | Rust |
//! |---|---|
//! | `Config(**fields)`, `preset(name, **overrides)`, `presets()` | `tmcc_model::Config` through serde, `tmcc_model::presets` ([`config`]) |
//! | `train(config, out=None, progress=True, device="auto")` → `Run` | `tmcc_lab::runner::run` ([`train`]) |
//! | `Run`: `weights()`, `embedding`, `metrics`, `eval`, `response`, `transplant`, `forward`, `save` | checkpoint, evaluation, response, transplant, reference forward ([`run`]) |
//! | `load(path)` → `Run` | `tmcc_lab::rundir` ([`run`]) |
//! | `sweep(base, grid, out=None, max_instances=64)` → columns | `tmcc_lab::sweep` ([`sweep`]) |
//!
//! Long work releases the GIL and stops cleanly on Ctrl-C ([`interrupt`]); every error is
//! a Python exception with one line ([`errors`]). The typed signatures are in `tmcc.pyi`.

use pyo3::prelude::*;

mod config;
mod device;
mod errors;
mod interrupt;
mod run;
mod sweep;
mod train;
mod values;

#[pymodule(name = "tmcc")]
fn tmcc_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("ConfigError", m.py().get_type::<errors::ConfigError>())?;
    m.add_class::<config::PyConfig>()?;
    m.add_class::<run::PyRun>()?;
    m.add_function(wrap_pyfunction!(config::preset, m)?)?;
    m.add_function(wrap_pyfunction!(config::presets, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(run::load, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep, m)?)?;
    Ok(())
}
