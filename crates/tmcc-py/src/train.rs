//! `tmcc.train(config, out=None, progress=True, device="auto")`: one training run through
//! the lab's runner (`tmcc_lab::runner::run`, as `tmcc train` does), with the GIL released
//! ([`interruptible`]) and a progress bar.
//!
//! Progress: a `tqdm.auto` bar when tqdm is installed, else one text line on `sys.stderr`
//! rewritten about every second (`step s/S  loss L  loss/naive q  eta E`). A
//! `KeyboardInterrupt` stops the run after the current logged step and is raised again,
//! saying where the checkpoint is when `out` is set (the runner writes it there).
//!
//! With `out`, the run directory is what `tmcc train --out` writes (`config.toml`,
//! checkpoint every `checkpoint_every` steps and at the end, `metrics.json`), so
//! `tmcc train --resume`, `tmcc eval` and `tmcc.load` read it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::{PyFileExistsError, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tmcc_lab::rundir::RunDir;
use tmcc_lab::runner::{
    check_memory, fmt_secs, run, Every, Observer, Outcome, Progress, RunOptions, RunState,
};
use tmcc_model::{Config, Model};

use crate::config::PyConfig;
use crate::device::{select_noted, stderr_write};
use crate::errors::IntoPy;
use crate::interrupt::interruptible;
use crate::run::PyRun;

/// The period of the text progress line.
const TEXT_PERIOD: Duration = Duration::from_secs(1);

/// Shows the progress of a run and carries the stop flag.
struct Watch<'a> {
    /// The tqdm bar, if tqdm is installed and progress was asked for.
    bar: Option<Py<PyAny>>,
    /// The text line instead of a bar.
    text: Option<Every>,
    shown_step: u64,
    naive: f64,
    stop: &'a AtomicBool,
}

impl<'a> Watch<'a> {
    fn new(py: Python, cfg: &Config, progress: bool, stop: &'a AtomicBool) -> Self {
        let bar = progress
            .then(|| tqdm_bar(py, cfg.steps))
            .flatten()
            .map(Bound::unbind);
        Self {
            text: (progress && bar.is_none()).then(|| Every::new(TEXT_PERIOD)),
            bar,
            shown_step: 0,
            naive: cfg.naive_loss(cfg.p),
            stop,
        }
    }

    /// Closes the bar, or ends the text line.
    fn finish(&self, py: Python) {
        if let Some(bar) = &self.bar {
            let _ = bar.call_method0(py, "close");
        } else if self.text.is_some() && self.shown_step > 0 {
            stderr_write(py, "\n");
        }
    }
}

/// A `tqdm.auto.tqdm` bar of `steps` steps, or `None` without tqdm.
fn tqdm_bar(py: Python, steps: u64) -> Option<Bound<PyAny>> {
    let tqdm = py.import("tqdm.auto").ok()?.getattr("tqdm").ok()?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("total", steps).ok()?;
    kwargs.set_item("unit", "step").ok()?;
    kwargs.set_item("desc", "train").ok()?;
    tqdm.call((), Some(&kwargs)).ok()
}

impl Observer for Watch<'_> {
    fn on_log(&mut self, p: &Progress, _: &dyn RunState) -> Result<(), tmcc_lab::Error> {
        let mean = p.mean_loss();
        let line = format!("loss {mean:.3e}  loss/naive {:.4}", mean / self.naive);
        if let Some(bar) = &self.bar {
            Python::attach(|py| {
                let _ = bar.call_method1(py, "update", (p.step - self.shown_step,));
                let _ = bar.call_method1(py, "set_postfix_str", (&line,));
            });
            self.shown_step = p.step;
        } else if let Some(every) = &mut self.text {
            if every.due() || p.step == p.steps {
                Python::attach(|py| {
                    stderr_write(
                        py,
                        &format!(
                            "\rstep {}/{}  {line}  eta {}   ",
                            p.step,
                            p.steps,
                            fmt_secs(p.eta_s, 0)
                        ),
                    )
                });
                self.shown_step = p.step;
            }
        }
        Ok(())
    }

    fn stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The run directory `out` for a new run; an existing one only with `force`.
pub fn create_dir(out: &Path, force: bool) -> PyResult<RunDir> {
    if out.exists() && !force {
        return Err(PyFileExistsError::new_err(format!(
            "out: {} exists; pass force=True to replace it",
            out.display()
        )));
    }
    RunDir::create(out, force).py_err()
}

/// Trains `config` and evaluates it (see the module docs).
#[pyfunction]
#[pyo3(signature = (config, out=None, progress=true, device="auto", *, force=false, checkpoint_every=2000))]
pub fn train(
    py: Python,
    config: PyRef<PyConfig>,
    out: Option<PathBuf>,
    progress: bool,
    device: &str,
    force: bool,
    checkpoint_every: u64,
) -> PyResult<PyRun> {
    let cfg = config.cfg.clone();
    let (device, device_note) = select_noted(py, device)?;
    // Refused before the model or the run directory exists: an oversize config must not
    // abort the interpreter in an allocation.
    check_memory(&device, &cfg).py_err()?;
    let model = Model::<f32>::new(&cfg).py_err()?;
    let dir = match &out {
        Some(path) => {
            let dir = create_dir(path, force)?;
            dir.write_config(&cfg).py_err()?;
            Some(dir)
        }
        None => None,
    };
    let stop = AtomicBool::new(false);
    let mut watch = Watch::new(py, &cfg, progress, &stop);
    let opts = RunOptions {
        resume: None,
        dir: dir.as_ref(),
        checkpoint_every,
        device_note: device_note.as_deref(),
    };
    let (outcome, signal) = {
        let (device, watch) = (&device, &mut watch);
        interruptible(py, &stop, move || run(device, model, &opts, watch))?
    };
    watch.finish(py);
    match outcome.py_err()? {
        Outcome::Finished(done) => Ok(PyRun::new(
            done.checkpoint,
            Some(done.metrics),
            dir.map(|d| d.path),
            device,
        )),
        Outcome::Stopped { checkpoint, .. } => {
            let at = format!("at step {} of {}", checkpoint.step, cfg.steps);
            let msg = match &dir {
                Some(d) => format!(
                    "training stopped {at}; the checkpoint is in {0} (tmcc.load reads it, \
                     `tmcc train --resume {0}` continues it)",
                    d.path.display()
                ),
                None => format!("training stopped {at} (pass out=DIR to keep a checkpoint)"),
            };
            match signal {
                Some(e) if !e.is_instance_of::<PyKeyboardInterrupt>(py) => Err(e),
                _ => Err(PyKeyboardInterrupt::new_err(msg)),
            }
        }
    }
}
