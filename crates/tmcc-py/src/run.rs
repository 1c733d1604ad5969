//! `tmcc.Run`: a trained (or loaded) model of `K` instances with what is known about it,
//! and the analyses of the lab on it; `tmcc.load(path)` reads any run directory or
//! checkpoint file the command line wrote.
//!
//! Arrays are numpy, instances first: `weights()` gives every checkpoint tensor by its
//! checkpoint name (`W1` `[K, H, D]`, `b1` `[K, H]`, `W2` `[K, D, H]`, `b2` `[K, D]`,
//! `W_E` `[K, D, F]`, `M` `[K, F, F]`, as present); `forward(x)` runs the dense reference
//! path (`tmcc_model::reference`) on a batch `x` of shape `[B, F]` (every instance) or
//! `[K, B, F]` (one batch per instance) and returns `out` `[K, B, F]` (`float32`).

use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use numpy::{PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tmcc_lab::response::{response, Counts};
use tmcc_lab::rundir::{load_checkpoint, Metrics, RunDir, METRICS};
use tmcc_lab::runner::{eval_model, Device};
use tmcc_lab::transplant::transplant;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::eval::{response_grid, RESPONSE_TOLERANCE};
use tmcc_model::reference::forward_backward;
use tmcc_model::Model;

use crate::config::PyConfig;
use crate::device::select;
use crate::errors::IntoPy;
use crate::train::create_dir;
use crate::values::{f32_array, f64_array, json_to_py, records};

#[pyclass(name = "Run", module = "tmcc", frozen)]
pub struct PyRun {
    checkpoint: Checkpoint<f32>,
    metrics: Option<Metrics>,
    dir: Option<PathBuf>,
    device: Device,
}

impl PyRun {
    pub fn new(
        checkpoint: Checkpoint<f32>,
        metrics: Option<Metrics>,
        dir: Option<PathBuf>,
        device: Device,
    ) -> Self {
        Self {
            checkpoint,
            metrics,
            dir,
            device,
        }
    }

    fn model(&self) -> &Model<f32> {
        &self.checkpoint.model
    }

    /// The run's device, or the one `device` names.
    fn device_for(&self, py: Python, device: Option<&str>) -> PyResult<Device> {
        match device {
            Some(d) => select(py, d),
            None => Ok(self.device.clone()),
        }
    }
}

/// `x` as row-major `f32` values of shape `[K, B, F]` for a model of `k` instances and `f`
/// features (a `[B, F]` batch is repeated for every instance).
fn batch_of(py: Python, x: &Bound<PyAny>, k: usize, f: usize) -> PyResult<(Vec<f32>, usize)> {
    let array = py.import("numpy")?.call_method1("asarray", (x,))?;
    let dtype = array.getattr("dtype")?.str()?.to_string();
    let shape: Vec<usize> = array.getattr("shape")?.extract()?;
    let want = format!("[B, {f}] or [{k}, B, {f}]");
    if !matches!(dtype.as_str(), "float32" | "float64") {
        return Err(PyTypeError::new_err(format!(
            "x: expected a float32 or float64 array of shape {want}, got dtype {dtype}"
        )));
    }
    let ok = match shape.as_slice() {
        [_, ff] => *ff == f,
        [kk, _, ff] => *kk == k && *ff == f,
        _ => false,
    };
    if !ok {
        return Err(PyValueError::new_err(format!(
            "x: expected shape {want}, got {shape:?}"
        )));
    }
    let as32 = array.call_method1("astype", ("float32",))?;
    let values: Vec<f32> = as32
        .cast::<PyArrayDyn<f32>>()?
        .readonly()
        .as_array()
        .iter()
        .copied()
        .collect();
    let b = shape[shape.len() - 2];
    let values = if shape.len() == 2 {
        values.repeat(k)
    } else {
        values
    };
    Ok((values, b))
}

#[pymethods]
impl PyRun {
    /// The run's config.
    #[getter]
    fn config(&self) -> PyConfig {
        PyConfig {
            cfg: self.model().cfg.clone(),
        }
    }

    /// Training steps done.
    #[getter]
    fn step(&self) -> u64 {
        self.checkpoint.step
    }

    /// The run directory (`None` for a run kept only in memory).
    #[getter]
    fn dir(&self) -> Option<String> {
        self.dir.as_ref().map(|d| d.display().to_string())
    }

    /// Where the run's analyses compute (`Device::describe`).
    #[getter]
    fn device(&self) -> String {
        self.device.describe()
    }

    /// Every tensor of the checkpoint, by name, as `float32` arrays (instances first).
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.model();
        let k = m.instances();
        let out = PyDict::new(py);
        for slot in &m.layout.slots {
            let values = m.slot_values(slot);
            let mut shape = vec![k];
            shape.extend(&slot.shape);
            out.set_item(slot.name(), f32_array(py, values, &shape)?)?;
        }
        let (f, d) = (m.cfg.n_feat, m.cfg.d_in());
        if let Some(e) = &m.embed {
            out.set_item("W_E", f32_array(py, e.clone(), &[k, d, f])?)?;
        }
        if let Some(mx) = &m.mixing {
            out.set_item("M", f32_array(py, mx.clone(), &[k, f, f])?)?;
        }
        Ok(out)
    }

    /// The fixed embedding `W_E` (`[K, D, F]`), or `None` for a variant without one.
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let m = self.model();
        m.embed
            .as_ref()
            .map(|e| f32_array(py, e.clone(), &[m.instances(), m.cfg.d_emb, m.cfg.n_feat]))
            .transpose()
    }

    /// The metrics of a finished run (`None` before it finished): `steps_done`, `seconds`,
    /// `device`, `device_note` (why `auto` chose the CPU, else `None`), `final_train_loss` `[K]`, `loss_curve` (`step` `[n]`, `loss` `[n, K]`)
    /// and `eval` (columns, one row per instance); with `learn_sigma`, `learned_sigma` `[K]`.
    #[getter]
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(m) = &self.metrics else {
            return Ok(None);
        };
        let out = PyDict::new(py);
        out.set_item("steps_done", m.steps_done)?;
        out.set_item("seconds", m.seconds)?;
        out.set_item("device", &m.device)?;
        out.set_item("device_note", &m.device_note)?;
        let k = m.final_train_loss.len();
        out.set_item(
            "final_train_loss",
            f64_array(py, m.final_train_loss.clone(), &[k])?,
        )?;
        let curve = PyDict::new(py);
        let steps: Vec<i64> = m.loss_curve.iter().map(|p| p.step as i64).collect();
        let width = m.loss_curve.first().map_or(0, |p| p.loss.len());
        let losses: Vec<f64> = m.loss_curve.iter().flat_map(|p| p.loss.clone()).collect();
        curve.set_item("step", numpy::IntoPyArray::into_pyarray(steps, py))?;
        curve.set_item("loss", f64_array(py, losses, &[m.loss_curve.len(), width])?)?;
        out.set_item("loss_curve", curve)?;
        out.set_item("eval", records(py, &m.eval)?)?;
        if !m.learned_sigma.is_empty() {
            let n = m.learned_sigma.len();
            out.set_item(
                "learned_sigma",
                f64_array(py, m.learned_sigma.clone(), &[n])?,
            )?;
        }
        Ok(Some(out))
    }

    /// Evaluates every instance on the evaluation stream: at probability `p` (a number, or
    /// one per instance; default each instance's training `p`) on `samples` samples
    /// (default the config's `eval_samples`). Columns, one row per instance.
    #[pyo3(signature = (p=None, samples=None, device=None))]
    fn eval<'py>(
        &self,
        py: Python<'py>,
        p: Option<&Bound<PyAny>>,
        samples: Option<usize>,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let m = self.model();
        let k = m.instances();
        let ps: Option<Vec<f64>> = match p {
            None => None,
            Some(p) => Some(match p.extract::<f64>() {
                Ok(v) => vec![v; k],
                Err(_) => p.extract::<Vec<f64>>().map_err(|_| {
                    PyTypeError::new_err("p: expected a number or a sequence of numbers")
                })?,
            }),
        };
        if let Some(ps) = &ps {
            if ps.len() != k {
                return Err(PyValueError::new_err(format!(
                    "p: expected one probability per instance ({k}), got {}",
                    ps.len()
                )));
            }
            if let Some(bad) = ps.iter().find(|p| !(**p > 0.0 && **p <= 1.0)) {
                return Err(PyValueError::new_err(format!(
                    "p: must be in (0, 1], got {bad}"
                )));
            }
        }
        let samples = samples.unwrap_or(m.cfg.eval_samples);
        if samples == 0 {
            return Err(PyValueError::new_err("samples: must be ≥ 1, got 0"));
        }
        let device = self.device_for(py, device)?;
        let evals = py
            .detach(|| eval_model(&device, m, samples, ps.as_deref()))
            .py_err()?;
        records(py, &evals)
    }

    /// Every feature's input–output response on `points` values `v` of `[-1, 1]`: `v`
    /// `[points]`, `resid` `[K, F, points]` (`out_i − r·v` for `x = v·e_i`),
    /// `err_computed` and `err_zero` `[K, F]`, `class` `[K, F]` (`computed`, `zero`,
    /// `partial`), `counts` (`computed`, `zero`, `partial`: `[K]` each), `tolerance`.
    #[pyo3(signature = (points=41, device=None))]
    fn response<'py>(
        &self,
        py: Python<'py>,
        points: usize,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        if points < 3 {
            return Err(PyValueError::new_err(format!(
                "points: must be ≥ 3, got {points}"
            )));
        }
        let m = self.model();
        let device = self.device_for(py, device)?;
        let resp = py.detach(|| response(&device, m, points)).py_err()?;
        let (k, f) = (resp.len(), m.cfg.n_feat);
        let feats = || resp.iter().flatten();
        let out = PyDict::new(py);
        out.set_item("v", f64_array(py, response_grid(points), &[points])?)?;
        let resid: Vec<f64> = feats().flat_map(|r| r.resid.clone()).collect();
        out.set_item("resid", f64_array(py, resid, &[k, f, points])?)?;
        let err_c: Vec<f64> = feats().map(|r| r.err_computed).collect();
        out.set_item("err_computed", f64_array(py, err_c, &[k, f])?)?;
        let err_z: Vec<f64> = feats().map(|r| r.err_zero).collect();
        out.set_item("err_zero", f64_array(py, err_z, &[k, f])?)?;
        let classes = resp
            .iter()
            .map(|inst| {
                let names = inst
                    .iter()
                    .map(|r| json_to_py(py, &serde_json::to_value(r.class).unwrap_or_default()))
                    .collect::<PyResult<Vec<_>>>()?;
                PyList::new(py, names)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let numpy = py.import("numpy")?;
        out.set_item(
            "class",
            numpy.call_method1("array", (PyList::new(py, classes)?,))?,
        )?;
        let counts: Vec<Counts> = resp.iter().map(|inst| Counts::of(inst)).collect();
        out.set_item("counts", records(py, &counts)?)?;
        out.set_item("tolerance", RESPONSE_TOLERANCE)?;
        Ok(out)
    }

    /// The transplant of an embedding variant: its weights with the embedding folded in
    /// (`W1' = W1·W_E`, `W2' = W_Eᵀ·W2`, `b2' = W_Eᵀ·b2`), run without it as a `res_mlp`
    /// (`emb_res`, `emb_res_orth`) or `mlp` (`emb_mlp`); a new, untrained-state `Run`.
    fn transplant(&self) -> PyResult<PyRun> {
        let moved = transplant(self.model()).py_err()?;
        Ok(PyRun::new(
            Checkpoint {
                model: moved,
                step: 0,
                moments: None,
                stream_positions: None,
            },
            None,
            None,
            self.device.clone(),
        ))
    }

    /// The model's output on the batch `x` (`[B, F]` or `[K, B, F]`, `float32` or
    /// `float64`): `[K, B, F]` `float32`, by the dense reference path.
    fn forward<'py>(&self, py: Python<'py>, x: &Bound<PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.model();
        let (k, f) = (m.instances(), m.cfg.n_feat);
        let (values, b) = batch_of(py, x, k, f)?;
        let out: Vec<f32> = py.detach(|| {
            (0..k)
                .flat_map(|i| {
                    let xi = ArrayView2::from_shape((b, f), &values[i * b * f..(i + 1) * b * f])
                        .expect("checked shape");
                    forward_backward(m, i, xi, false).out.into_iter()
                })
                .collect()
        });
        f32_array(py, out, &[k, b, f])
    }

    /// Writes the run as a run directory (`config.toml`, `checkpoint.safetensors`,
    /// `metrics.json` when finished), as `tmcc train` does; an existing `dir` only with
    /// `force`.
    #[pyo3(signature = (dir, force=false))]
    fn save(&self, dir: PathBuf, force: bool) -> PyResult<()> {
        let d = create_dir(&dir, force)?;
        d.write_config(&self.model().cfg).py_err()?;
        d.write_checkpoint(&self.checkpoint).py_err()?;
        if let Some(m) = &self.metrics {
            d.write_metrics(m).py_err()?;
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        let cfg = &self.model().cfg;
        let ratio = self.metrics.as_ref().map_or(String::new(), |m| {
            let r: Vec<String> = m
                .eval
                .iter()
                .take(4)
                .map(|e| format!("{:.4}", e.ratio))
                .collect();
            let more = if m.eval.len() > 4 { " …" } else { "" };
            format!(", loss/naive {}{more}", r.join(" "))
        });
        format!(
            "Run({}, {} instance(s), step {}/{}{ratio})",
            cfg.variant.name(),
            cfg.instances,
            self.checkpoint.step,
            cfg.steps
        )
    }
}

/// The metrics of the run directory `dir`, if it holds those of the finished run whose
/// checkpoint is at step `step`.
fn read_metrics(dir: &Path, step: u64) -> Option<Metrics> {
    let text = std::fs::read_to_string(dir.join(METRICS)).ok()?;
    serde_json::from_str::<Metrics>(&text)
        .ok()
        .filter(|m| m.steps_done == step)
}

/// Loads a run directory (or a checkpoint file) written by `tmcc train`, `tmcc.train` or
/// `Run.save`; its analyses run on `device`.
#[pyfunction]
#[pyo3(signature = (path, device="auto"))]
pub fn load(py: Python, path: PathBuf, device: &str) -> PyResult<PyRun> {
    let device = select(py, device)?;
    let checkpoint = load_checkpoint(&path).py_err()?;
    let dir = RunDir::holding(&path).path;
    let metrics = read_metrics(&dir, checkpoint.step);
    Ok(PyRun::new(checkpoint, metrics, Some(dir), device))
}
