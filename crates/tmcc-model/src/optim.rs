//! Learning-rate schedules and the per-step Adam/AdamW constants.
//!
//! `lr(t) = lr · w(t) · d(t)` for step `t = 0, 1, …, T−1`: warm-up `w(t) = min(1, (t+1)/W)`
//! over `W = warmup_steps`, then decay over the remaining `T − W` steps with progress
//! `q = (t − W)/(T − W)`: constant `d = 1`, cosine (half period, torch's) `d = (1 + cos πq)/2`,
//! linear `d = 1 − q`; APD's quarter-period cosine uses `q' = (t − W)/(T − W − 1)`, so that
//! it reaches 0 at the last step: `d = cos(π/2 · q')`.

use tmcc_kernels::AdamSpec;

use crate::config::{Config, Optimizer, Schedule};
use crate::model::Float;

/// Learning rate of step `t` (0-based).
pub fn learning_rate(cfg: &Config, t: u64) -> f64 {
    let warm = cfg.warmup_steps;
    let w = if warm > 0 && t < warm {
        (t + 1) as f64 / warm as f64
    } else {
        1.0
    };
    let span = cfg.steps.saturating_sub(warm).max(1) as f64;
    let q = (t.saturating_sub(warm) as f64 / span).clamp(0.0, 1.0);
    let d = match cfg.schedule {
        Schedule::Constant => 1.0,
        Schedule::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * q).cos()),
        Schedule::Linear => 1.0 - q,
        Schedule::CosineQuarter => {
            let last = cfg.steps.saturating_sub(warm).saturating_sub(1).max(1) as f64;
            let q = (t.saturating_sub(warm) as f64 / last).clamp(0.0, 1.0);
            (std::f64::consts::FRAC_PI_2 * q).cos()
        }
    };
    cfg.lr * w * d
}

/// The Adam constants for step `t` (0-based; bias corrections use `t + 1`).
pub fn adam_spec<T: Float>(cfg: &Config, t: u64) -> AdamSpec<T> {
    let n = (t + 1) as i32;
    AdamSpec {
        lr: T::from_f64(learning_rate(cfg, t)),
        beta1: T::from_f64(cfg.beta1),
        beta2: T::from_f64(cfg.beta2),
        eps: T::from_f64(cfg.eps),
        weight_decay: T::from_f64(match cfg.optimizer {
            Optimizer::Adam => 0.0,
            Optimizer::Adamw => cfg.weight_decay,
        }),
        bias_correction1: T::from_f64(1.0 - cfg.beta1.powi(n)),
        bias_correction2: T::from_f64(1.0 - cfg.beta2.powi(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_start_at_lr_and_decay_to_zero() {
        let mut c = Config {
            steps: 100,
            lr: 1.0,
            ..Config::default()
        };
        for s in [
            Schedule::Constant,
            Schedule::Cosine,
            Schedule::Linear,
            Schedule::CosineQuarter,
        ] {
            c.schedule = s;
            assert_eq!(learning_rate(&c, 0), 1.0);
            let last = learning_rate(&c, 99);
            match s {
                Schedule::Constant => assert_eq!(last, 1.0),
                _ => assert!(last < 0.011, "{s:?}: {last}"),
            }
        }
        c.schedule = Schedule::Linear;
        assert!((learning_rate(&c, 50) - 0.5).abs() < 1e-12);
        // APD's quarter period: cos(π/2 · t/(T−1)), exactly 0 at t = T−1.
        c.schedule = Schedule::CosineQuarter;
        assert!(learning_rate(&c, 99).abs() < 1e-15);
        let want = (std::f64::consts::FRAC_PI_2 * 33.0 / 99.0).cos();
        assert!((learning_rate(&c, 33) - want).abs() < 1e-12);
        c.warmup_steps = 10;
        assert!((learning_rate(&c, 0) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&c, 9) - 1.0).abs() < 1e-12);
    }
}
