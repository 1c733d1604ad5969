//! `tmcc.sweep(base, grid, out=None, max_instances=64)`: a grid of configs trained by the
//! lab's sweep (`tmcc_lab::sweep`, as `tmcc sweep` does: runs that differ only in `seed`,
//! `p`, `sigma` train side by side as instances), returned as the results table's columns.
//!
//! The sweep file is made from `base` (every field) and `grid` (`{field: [values]}`) as
//! TOML and parsed by `SweepSpec::from_toml_str`, so the rules, run order and errors are
//! the command line's. With `out`, the sweep directory is what `tmcc sweep --out` writes
//! (`sweep.toml`, `results.json`, `results.csv`, `runs/`); without it the sweep runs in a
//! temporary directory that is removed afterwards (its `dir` column then names a
//! directory that no longer exists).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pyo3::exceptions::{PyFileExistsError, PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tmcc_lab::sweep::{ShardEnd, ShardPlan, ShardRun, SweepShard, SweepSpec};

use crate::config::PyConfig;
use crate::device::{select_noted, stderr_line};
use crate::errors::{config_error, IntoPy};
use crate::interrupt::interruptible;
use crate::values::{columns, to_toml};

/// The sweep file of `base` and `grid`, as TOML text.
fn sweep_file(base: &PyConfig, grid: &Bound<PyDict>) -> PyResult<String> {
    let mut table = toml::Table::try_from(&base.cfg).expect("a Config serializes to a table");
    let mut axes = toml::Table::new();
    for (key, values) in grid.iter() {
        let field: String = key.extract()?;
        match to_toml(&field, &values)? {
            toml::Value::Array(a) => axes.insert(field, toml::Value::Array(a)),
            _ => {
                return Err(config_error(
                    &field,
                    "grid values must be a non-empty list, e.g. `p=[0.01, 0.03]`",
                ))
            }
        };
    }
    table.insert("grid".into(), toml::Value::Table(axes));
    Ok(toml::to_string(&table).expect("a TOML table serializes"))
}

/// A fresh temporary directory name for a sweep without `out`.
fn temp_dir() -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "tmcc-py-sweep-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    ))
}

/// Trains every run of the grid; returns the results table as a dict of numpy columns.
#[pyfunction]
#[pyo3(signature = (base, grid, out=None, max_instances=64, *, progress=true, device="auto", force=false))]
#[allow(clippy::too_many_arguments)]
pub fn sweep<'py>(
    py: Python<'py>,
    base: PyRef<PyConfig>,
    grid: &Bound<'py, PyDict>,
    out: Option<PathBuf>,
    max_instances: usize,
    progress: bool,
    device: &str,
    force: bool,
) -> PyResult<Bound<'py, PyDict>> {
    if max_instances == 0 {
        return Err(PyValueError::new_err("max_instances: must be ≥ 1, got 0"));
    }
    let text = sweep_file(&base, grid)?;
    let spec = SweepSpec::from_toml_str(&text).py_err()?;
    let plan =
        ShardPlan::new(spec.expand().py_err()?, SweepShard::WHOLE, max_instances).py_err()?;
    let (device, device_note) = select_noted(py, device)?;
    // Refused before anything is allocated or written, as `tmcc sweep` does.
    plan.check_memory(&device).py_err()?;
    let (path, keep) = match out {
        Some(path) if path.exists() && !force => {
            return Err(PyFileExistsError::new_err(format!(
                "out: {} exists; pass force=True to replace it",
                path.display()
            )))
        }
        Some(path) => (path, true),
        None => (temp_dir(), false),
    };
    let mut shard = ShardRun::create(&spec, &text, plan, &path, force || !keep).py_err()?;
    shard.device_note = device_note;
    let stop = AtomicBool::new(false);
    let ended = {
        let (device, shard, stop_ref) = (&device, &mut shard, &stop);
        interruptible(py, &stop, move || {
            let mut log = |line: &str| {
                if progress {
                    Python::attach(|py| stderr_line(py, &format!("[sweep] {line}")));
                }
            };
            shard.run(device, &mut log, stop_ref)
        })
    };
    let result = match ended {
        Ok((Ok(ShardEnd::Complete { .. }), _)) => {
            columns(py, &shard.results.columns, &shard.results.rows)
        }
        Ok((Ok(ShardEnd::Interrupted { group }), signal)) => {
            let msg = format!(
                "sweep stopped in group {} of {}{}",
                group + 1,
                shard.plan.groups.len(),
                if keep {
                    format!(
                        "; the {} finished runs are in {}",
                        shard.results.rows.len(),
                        path.display()
                    )
                } else {
                    String::new()
                }
            );
            match signal {
                Some(e) if !e.is_instance_of::<PyKeyboardInterrupt>(py) => Err(e),
                _ => Err(PyKeyboardInterrupt::new_err(msg)),
            }
        }
        Ok((Err(e), _)) => Err(crate::errors::to_py(&e)),
        Err(e) => Err(e),
    };
    if !keep {
        let _ = std::fs::remove_dir_all(&path);
    }
    result
}
