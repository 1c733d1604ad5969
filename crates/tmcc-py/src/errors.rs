//! Rust errors as Python exceptions, each one line (newlines become spaces):
//!
//! | error | exception |
//! |---|---|
//! | a bad config field (`tmcc_model::ConfigError`) | `tmcc.ConfigError` (a `ValueError`), with `.field` |
//! | a file that is missing / exists / cannot be read | `FileNotFoundError` / `FileExistsError` / `OSError` |
//! | a damaged or foreign checkpoint | `ValueError` |
//! | a loss that became NaN or infinite | `FloatingPointError` |
//! | anything else | `RuntimeError` |
//!
//! The message is the error with every cause after it (`what: cause: …`), as the command
//! line prints it.

use std::error::Error as StdError;

use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyFloatingPointError, PyOSError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    tmcc,
    ConfigError,
    PyValueError,
    "A config field with a bad value: `.field` names it; the message gives the allowed range."
);

/// One line: the error and its causes.
fn one_line(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text.replace('\n', " ")
}

/// A `tmcc.ConfigError` naming `field`, with `message` after the field's name.
pub fn config_error(field: &str, message: &str) -> PyErr {
    config_error_from(&tmcc_model::ConfigError::new(field, message), None)
}

/// `e` as a `tmcc.ConfigError`; `text` (default: `e` itself) is the message.
fn config_error_from(e: &tmcc_model::ConfigError, text: Option<String>) -> PyErr {
    let err = ConfigError::new_err(text.unwrap_or_else(|| e.to_string()).replace('\n', " "));
    Python::attach(|py| {
        // Setting an attribute on a fresh exception object cannot fail.
        let _ = err.value(py).setattr("field", e.field.clone());
    });
    err
}

/// What kind of exception an error (or one of its causes) calls for.
enum Kind<'a> {
    Config(&'a tmcc_model::ConfigError),
    Io(std::io::ErrorKind),
    Value,
    FloatingPoint,
}

fn kind_of_model(e: &tmcc_model::Error) -> Option<Kind<'_>> {
    match e {
        tmcc_model::Error::Config(ce) => Some(Kind::Config(ce)),
        tmcc_model::Error::Io { source, .. } => Some(Kind::Io(source.kind())),
        tmcc_model::Error::Checkpoint { .. } => Some(Kind::Value),
        tmcc_model::Error::NonFinite { .. } => Some(Kind::FloatingPoint),
        _ => None,
    }
}

/// The kind of `e` itself (transparent wrappers are looked through here, since their
/// `source` skips the error they wrap).
fn kind_of<'a>(e: &'a (dyn StdError + 'static)) -> Option<Kind<'a>> {
    if let Some(ce) = e.downcast_ref::<tmcc_model::ConfigError>() {
        return Some(Kind::Config(ce));
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return Some(Kind::Io(io.kind()));
    }
    if let Some(m) = e.downcast_ref::<tmcc_model::Error>() {
        return kind_of_model(m);
    }
    match e.downcast_ref::<tmcc_lab::Error>()? {
        tmcc_lab::Error::Config(ce) => Some(Kind::Config(ce)),
        tmcc_lab::Error::Model(m) => kind_of_model(m),
        _ => None,
    }
}

/// The exception for `e`, chosen by the first cause of a known kind.
pub fn to_py(e: &(dyn StdError + 'static)) -> PyErr {
    let text = one_line(e);
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cause {
        match kind_of(c) {
            Some(Kind::Config(ce)) => return config_error_from(ce, Some(text)),
            Some(Kind::Io(std::io::ErrorKind::NotFound)) => {
                return PyFileNotFoundError::new_err(text)
            }
            Some(Kind::Io(std::io::ErrorKind::AlreadyExists)) => {
                return PyFileExistsError::new_err(text)
            }
            Some(Kind::Io(_)) => return PyOSError::new_err(text),
            Some(Kind::Value) => return PyValueError::new_err(text),
            Some(Kind::FloatingPoint) => return PyFloatingPointError::new_err(text),
            None => cause = c.source(),
        }
    }
    PyRuntimeError::new_err(text)
}

/// `Result` of any tmcc error → `PyResult`.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T, E: StdError + 'static> IntoPy<T> for Result<T, E> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| to_py(&e))
    }
}
