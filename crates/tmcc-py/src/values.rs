//! Values between Python and tmcc: a Python value as a TOML value (what a config field is
//! set from), a JSON value as a Python object, and a table's columns as numpy arrays.
//!
//! Python → TOML: `bool` → boolean; `str` → string; a numpy scalar or array → its Python
//! value (`tolist()`); a list or tuple → array; a dict → table; an integer (`int`, anything
//! with `__index__`) → integer; a real (`float`, anything with `__float__`) → float.
//! Anything else is a `TypeError` naming the field.
//!
//! Columns: a column of `n` values becomes a 1-D numpy array of length `n`: `bool` if
//! every value is a boolean, `int64` if every value is an integer, `float64` if every value
//! is a number or missing (missing: NaN), `str` if every value is a string, else `object`
//! (e.g. list-valued fields such as `importance`).

use numpy::{IntoPyArray, PyArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

/// `value` (the Python value given for config field `field`) as a TOML value.
pub fn to_toml(field: &str, value: &Bound<PyAny>) -> PyResult<toml::Value> {
    let bad = || {
        let type_name = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!(
            "config field `{field}`: cannot use a value of type {type_name} \
             (expected a bool, int, float, str or a list of them)"
        ))
    };
    if value.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(value.is_truthy()?));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(toml::Value::String(s.to_str()?.to_string()));
    }
    if value.hasattr("tolist")? && value.hasattr("dtype")? {
        // A numpy scalar or array: its Python value (a number, bool, or nested lists).
        return to_toml(field, &value.call_method0("tolist")?);
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        return value
            .try_iter()?
            .map(|v| to_toml(field, &v?))
            .collect::<PyResult<Vec<_>>>()
            .map(toml::Value::Array);
    }
    if let Ok(d) = value.cast::<PyDict>() {
        let mut table = toml::Table::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| bad())?;
            table.insert(key.clone(), to_toml(&format!("{field}.{key}"), &v)?);
        }
        return Ok(toml::Value::Table(table));
    }
    if value.is_instance_of::<PyInt>() || value.hasattr("__index__")? {
        return value
            .extract::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "config field `{field}`: the integer {value} does not fit in 64 bits"
                ))
            });
    }
    if value.is_instance_of::<PyFloat>() || value.hasattr("__float__")? {
        return Ok(toml::Value::Float(value.extract::<f64>()?));
    }
    Err(bad())
}

/// A JSON value as a Python object (`null` → `None`, objects → dicts).
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|v| json_to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, v) in o {
                d.set_item(k, json_to_py(py, v)?)?;
            }
            d.into_any()
        }
    })
}

/// One column of JSON values as a 1-D numpy array (see the module docs for its dtype).
pub fn column<'py>(py: Python<'py>, values: &[&Value]) -> PyResult<Bound<'py, PyAny>> {
    let all = |f: fn(&Value) -> bool| values.iter().all(|v| f(v));
    if !values.is_empty() && all(Value::is_boolean) {
        let v: Vec<bool> = values.iter().map(|v| v.as_bool() == Some(true)).collect();
        return Ok(v.into_pyarray(py).into_any());
    }
    if !values.is_empty() && all(|v| v.is_i64()) {
        let v: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap_or(0)).collect();
        return Ok(v.into_pyarray(py).into_any());
    }
    if all(|v| v.is_number() || v.is_null()) {
        let v: Vec<f64> = values
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        return Ok(v.into_pyarray(py).into_any());
    }
    let numpy = py.import("numpy")?;
    let items = values
        .iter()
        .map(|v| json_to_py(py, v))
        .collect::<PyResult<Vec<_>>>()?;
    if all(Value::is_string) {
        return numpy.call_method1("array", (PyList::new(py, items)?,));
    }
    let out = numpy.call_method(
        "empty",
        (values.len(),),
        Some(&[("dtype", numpy.getattr("object_")?)].into_py_dict(py)?),
    )?;
    for (i, item) in items.into_iter().enumerate() {
        out.set_item(i, item)?;
    }
    Ok(out)
}

/// `values` (row-major, `shape`) as a numpy `float32` array of that shape.
pub fn f32_array<'py>(
    py: Python<'py>,
    values: Vec<f32>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(values.into_pyarray(py).reshape(shape.to_vec())?.into_any())
}

/// `values` (row-major, `shape`) as a numpy `float64` array of that shape.
pub fn f64_array<'py>(
    py: Python<'py>,
    values: Vec<f64>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    Ok(values.into_pyarray(py).reshape(shape.to_vec())?.into_any())
}

/// The table `rows` (one JSON object per row) as a dict of columns `names`, in order; a
/// value missing from a row is missing (`NaN` in a number column).
pub fn columns<'py>(
    py: Python<'py>,
    names: &[String],
    rows: &[serde_json::Map<String, Value>],
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for name in names {
        let values: Vec<&Value> = rows
            .iter()
            .map(|r| r.get(name).unwrap_or(&Value::Null))
            .collect();
        out.set_item(name, column(py, &values)?)?;
    }
    Ok(out)
}

/// `items` (records of one type) as a dict of columns, one per field.
pub fn records<'py, T: serde::Serialize>(
    py: Python<'py>,
    items: &[T],
) -> PyResult<Bound<'py, PyDict>> {
    let rows: Vec<serde_json::Map<String, Value>> = items
        .iter()
        .filter_map(|i| match serde_json::to_value(i) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect();
    let names: Vec<String> = rows
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    columns(py, &names, &rows)
}
