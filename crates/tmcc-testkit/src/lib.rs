//! Shared test support for the tmcc crates (a dev-dependency only): how results are
//! compared, stated once.
//!
//! - [`Tol`] and [`assert_close`]: element `i` passes when `|got − want| ≤ atol +
//!   rtol·|want|` (after dividing both by a `unit`); the worst element of every
//!   comparison is printed, passing or not, so a tolerance can be judged from the log.
//! - [`rel_err`] and [`rel_err_floor`]: the norm-wise relative error `‖a − b‖/‖b‖`.
//! - [`naive`]: a textbook backend (sums in `f64`) that the CPU and CUDA backends are
//!   checked against.

pub mod naive;

/// An element-wise tolerance: `|got − want| ≤ atol + rtol·|want|`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub atol: f64,
    pub rtol: f64,
}

/// Asserts `got ≈ want` element-wise within `tol` after dividing both by `unit` (a scale
/// such as the tensor's largest `|want|`; `0` means 1), and prints the worst element.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], unit: f64, tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    if got.is_empty() {
        eprintln!("{what}: empty");
        return;
    }
    let unit = if unit > 0.0 { unit } else { 1.0 };
    let mut worst = (0usize, -1.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64 / unit, w as f64 / unit);
        let d = (g - w).abs();
        let ratio = if g == w {
            0.0
        } else if d.is_nan() {
            f64::INFINITY
        } else {
            d / (tol.atol + tol.rtol * w.abs())
        };
        if ratio > worst.1 {
            worst = (i, ratio);
        }
    }
    let (i, ratio) = worst;
    let (g, w) = (got[i] as f64, want[i] as f64);
    let msg = format!(
        "{what}: worst element {i} of {}: got {g:e}, want {w:e} (unit {unit:e}), |diff| \
         {:.3e}, ratio to the allowance {ratio:.3} (atol {:e} + rtol {:e}·|want|)",
        got.len(),
        (g - w).abs(),
        tol.atol,
        tol.rtol
    );
    eprintln!("{msg}");
    assert!(ratio <= 1.0, "{msg}");
}

/// `‖a − b‖ / max(‖b‖, floor)`: the relative error, with `floor` standing for "zero up
/// to rounding" when `b` itself is that small (e.g. a loss of 1e-24 on a solved batch).
pub fn rel_err_floor(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err of slices of different lengths");
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(floor)
}

/// `‖a − b‖ / ‖b‖`.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    rel_err_floor(a, b, f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_values_pass_and_the_allowance_is_atol_plus_rtol() {
        let tol = Tol {
            atol: 1e-3,
            rtol: 1e-2,
        };
        assert_close("exact", &[1.0, -2.0], &[1.0, -2.0], 0.0, tol);
        // |diff| 0.0109 against 1e-3 + 1e-2·1: just inside.
        assert_close("inside", &[1.0109], &[1.0], 0.0, tol);
        let outside = std::panic::catch_unwind(|| assert_close("out", &[1.012], &[1.0], 0.0, tol));
        assert!(outside.is_err());
        let nan = std::panic::catch_unwind(|| assert_close("nan", &[f32::NAN], &[1.0], 0.0, tol));
        assert!(nan.is_err());
    }

    #[test]
    fn relative_error_is_normwise() {
        assert!((rel_err(&[3.0, 4.0], &[0.0, 4.0]) - 0.75).abs() < 1e-15);
        assert_eq!(rel_err_floor(&[1e-20], &[0.0], 1e-6), 1e-14);
    }
}
