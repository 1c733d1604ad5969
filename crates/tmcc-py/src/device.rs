//! `device="auto"|"cpu"|"cuda"`: the same choice and probe as the command line's
//! `--device` (`tmcc_lab::runner::Device::select`). `auto` falls back to the CPU with a
//! one-line note on `sys.stderr`, shown once per process.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tmcc_lab::runner::{Device, DeviceChoice};

/// The device `choice` names; an unknown name is a `ValueError`, `cuda` without a usable
/// device a `RuntimeError` saying why.
pub fn select(py: Python, choice: &str) -> PyResult<Device> {
    select_noted(py, choice).map(|(device, _)| device)
}

/// [`select`], and the note saying why `auto` fell back to the CPU (for the run's
/// `metrics.json`, as `tmcc train` records it).
pub fn select_noted(py: Python, choice: &str) -> PyResult<(Device, Option<String>)> {
    static NOTED: AtomicBool = AtomicBool::new(false);
    let choice: DeviceChoice = choice
        .parse()
        .map_err(|e: String| PyValueError::new_err(format!("device: {e}")))?;
    let (device, note) = Device::select(choice).map_err(PyRuntimeError::new_err)?;
    if let Some(note) = &note {
        if !NOTED.swap(true, Ordering::SeqCst) {
            stderr_line(py, &format!("note: {note}"));
        }
    }
    Ok((device, note))
}

/// Writes `text` and a newline to Python's `sys.stderr` (what a notebook shows).
pub fn stderr_line(py: Python, text: &str) {
    stderr_write(py, &format!("{text}\n"));
}

/// Writes `text` as it is to Python's `sys.stderr`; a failing stream is ignored.
pub fn stderr_write(py: Python, text: &str) {
    if let Ok(err) = py.import("sys").and_then(|s| s.getattr("stderr")) {
        let _ = err.call_method1("write", (text,));
        let _ = err.call_method0("flush");
    }
}
