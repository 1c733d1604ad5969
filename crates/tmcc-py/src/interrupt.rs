//! Long work with the GIL released, stoppable by Ctrl-C (a `KeyboardInterrupt`, e.g. the
//! stop button of a notebook).
//!
//! Python only notices a signal when it runs its own code, and the work runs in Rust. So
//! the work runs on a worker thread while the calling (main) thread, without the GIL,
//! waits for it and about every 50 ms briefly takes the GIL to ask Python for pending
//! signals. On `KeyboardInterrupt` it sets the stop flag, which the work reads at its next
//! logged step (the runner's `Observer::stop`), and waits for the work to end cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often the waiting thread checks for signals.
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` without the GIL; returns its result and the `KeyboardInterrupt` (or other
/// signal error) that set `stop`, if one did. A panic in `work` is a `RuntimeError`.
pub fn interruptible<T: Send>(
    py: Python,
    stop: &AtomicBool,
    work: impl FnOnce() -> T + Send,
) -> PyResult<(T, Option<PyErr>)> {
    let (result, signal) = py.detach(|| {
        std::thread::scope(|scope| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let worker = scope.spawn(move || {
                let out = work();
                let _ = done_tx.send(());
                out
            });
            let mut signal = None;
            // Disconnected (the worker panicked) ends the wait as well as a message does.
            while let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(POLL) {
                if signal.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        stop.store(true, Ordering::SeqCst);
                        signal = Some(e);
                    }
                }
            }
            (worker.join(), signal)
        })
    });
    match result {
        Ok(out) => Ok((out, signal)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(PyRuntimeError::new_err(format!(
                "internal error (a bug in tmcc, please report it): {}",
                what.replace('\n', " ")
            )))
        }
    }
}
