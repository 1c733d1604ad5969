//! The activations of the hidden layers (and, optionally, of the output) and of the labels
//! (docs/science.md#model-family):
//!
//! - ReLU: `max(x, 0)`, derivative `[x > 0]` (0 at the kink, as everywhere in tmcc).
//! - GELU in its exact erf form: `GELU(x) = x·Φ(x) = x/2·(1 + erf(x/√2))`, derivative
//!   `Φ(x) + x·φ(x)` with `φ(x) = exp(−x²/2)/√(2π)`. `erf` is libm's (correctly rounded
//!   to within an ulp in f64); `f32` values are computed in `f64` and rounded once.
//! - Identity: `x`, derivative 1 (a linear hidden layer, as in the toy models of
//!   superposition: `h = W x`).
//!
//! All are 0 at 0, so labels stay sparse where the input is.

use serde::{Deserialize, Serialize};

use crate::model::Float;

/// A hidden-layer activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Relu,
    Gelu,
    Identity,
}

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `Φ(x)`, the standard normal distribution function.
fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Relu => "relu",
            Act::Gelu => "gelu",
            Act::Identity => "identity",
        }
    }

    /// `act(x)`.
    #[inline]
    pub fn apply<T: Float>(self, x: T) -> T {
        match self {
            Act::Relu => x.max(T::zero()),
            Act::Gelu => {
                let v = x.as_f64();
                T::from_f64(v * normal_cdf(v))
            }
            Act::Identity => x,
        }
    }

    /// `act'(x)`.
    #[inline]
    pub fn derivative<T: Float>(self, x: T) -> T {
        match self {
            Act::Relu => {
                if x > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Act::Gelu => {
                let v = x.as_f64();
                T::from_f64(normal_cdf(v) + v * FRAC_1_SQRT_2PI * (-0.5 * v * v).exp())
            }
            Act::Identity => T::one(),
        }
    }

    /// Whether `act'` jumps at 0 (a finite difference across 0 is not a derivative).
    pub fn has_kink(self) -> bool {
        self == Act::Relu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_known_values_and_its_derivative() {
        // GELU(1) = Φ(1) = 0.841344746068543; GELU(−1) = −(1 − Φ(1)).
        assert!((Act::Gelu.apply(1.0f64) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((Act::Gelu.apply(-1.0f64) + 0.158_655_253_931_457_05).abs() < 1e-15);
        assert_eq!(Act::Gelu.apply(0.0f64), 0.0);
        for x in [-2.5f64, -0.7, 0.0, 0.3, 1.9] {
            let h = 1e-6;
            let fd = (Act::Gelu.apply(x + h) - Act::Gelu.apply(x - h)) / (2.0 * h);
            assert!((fd - Act::Gelu.derivative(x)).abs() < 1e-9, "x = {x}");
        }
        assert_eq!(Act::Relu.apply(-0.5f64), 0.0);
        assert_eq!(Act::Relu.derivative(0.5f64), 1.0);
    }
}
