//! Summary statistics and the one-sample Student t-test used for verdicts.
//!
//! For values `v_1..v_n` (e.g. loss/naive of `n` seeds): mean, sample standard deviation
//! `s`, standard error `s/√n`, and `t = (mean − μ0)/SE` with `n − 1` degrees of freedom.
//! The t distribution's CDF is `1 − ½·I_{ν/(ν+t²)}(ν/2, ½)` for `t ≥ 0`, with the
//! regularized incomplete beta `I` evaluated by its continued fraction (modified Lentz).
//!
//! Effect sizes: the two-sided confidence interval of the mean at level `1 − α` is
//! `mean ± t_{1−α/2, n−1}·SE` ([`mean_interval`]; the quantile by bisection of the CDF).
//! [`Interval::against_margin`] reads an interval against a practical margin declared
//! beforehand: entirely above it, entirely below it, or straddling it (inconclusive).
//!
//! Trends ([`slope_interval`]): the least-squares line `y ≈ a + b·x` through `n ≥ 3` points,
//! `b = Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²`, with `SE(b)² = Σ residual² / ((n − 2)·Σ(x − x̄)²)` and
//! the interval `b ± t_{1−α/2, n−2}·SE(b)`.

use serde::{Deserialize, Serialize};

/// Mean, spread and a one-sided test of a sample against `mu0`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub se: f64,
    pub min: f64,
    pub max: f64,
    /// `μ0` of the tests below.
    pub mu0: f64,
    pub t: f64,
    /// One-sided p-value of `H1: mean < μ0`.
    pub p_below: f64,
    /// One-sided p-value of `H1: mean > μ0`.
    pub p_above: f64,
}

pub fn summarize(values: &[f64], mu0: f64) -> Summary {
    let n = values.len();
    let nf = n as f64;
    let mean = values.iter().sum::<f64>() / nf.max(1.0);
    let var = if n > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0)
    } else {
        0.0
    };
    let sd = var.sqrt();
    let se = sd / nf.max(1.0).sqrt();
    let t = if se > 0.0 {
        (mean - mu0) / se
    } else if mean == mu0 {
        0.0
    } else {
        (mean - mu0).signum() * f64::INFINITY
    };
    let df = (nf - 1.0).max(1.0);
    let cdf = student_t_cdf(t, df);
    Summary {
        n,
        mean,
        sd,
        se,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        mu0,
        t,
        p_below: cdf,
        p_above: 1.0 - cdf,
    }
}

/// `P(T ≤ t)` for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let x = df / (df + t * t);
    let tail = 0.5 * reg_inc_beta(x, df / 2.0, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// `ln Γ(x)` (Lanczos, g = 7, n = 9), accurate to ~1e-15 for `x > 0`.
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta `I_x(a, b)`.
pub fn reg_inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast for x < (a+1)/(a+b+2); else use symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(1.0 - x, b, a) / b
    }
}

fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `t` with `P(T ≤ t) = prob` for Student's t with `df` degrees of freedom (bisection of
/// [`student_t_cdf`] to 1e-12; `prob` in (0, 1)).
pub fn student_t_quantile(prob: f64, df: f64) -> f64 {
    assert!(prob > 0.0 && prob < 1.0, "quantile of {prob}");
    let (mut lo, mut hi) = (-1.0, 1.0);
    while student_t_cdf(lo, df) > prob {
        lo *= 2.0;
    }
    while student_t_cdf(hi, df) < prob {
        hi *= 2.0;
    }
    while hi - lo > 1e-12 * hi.abs().max(1.0) {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < prob {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
}

/// Where an interval lies relative to a practical margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginReading {
    /// `lo > margin`: the effect is at least the margin.
    Above,
    /// `hi < margin`: the effect is smaller than the margin.
    Below,
    /// The interval contains the margin.
    Inconclusive,
}

impl Interval {
    /// The interval of `a + b·x` for `x` in this one (`b < 0` swaps the ends).
    pub fn affine(self, a: f64, b: f64) -> Self {
        let (x, y) = (a + b * self.lo, a + b * self.hi);
        Self {
            lo: x.min(y),
            hi: x.max(y),
            level: self.level,
        }
    }

    pub fn against_margin(self, margin: f64) -> MarginReading {
        if self.lo > margin {
            MarginReading::Above
        } else if self.hi < margin {
            MarginReading::Below
        } else {
            MarginReading::Inconclusive
        }
    }
}

/// The `level` confidence interval of the mean of `s` (Student t with `n − 1` degrees of
/// freedom; a single value gives the point itself).
pub fn mean_interval(s: &Summary, level: f64) -> Interval {
    let half = if s.n > 1 {
        student_t_quantile(0.5 + level / 2.0, s.n as f64 - 1.0) * s.se
    } else {
        0.0
    };
    Interval {
        lo: s.mean - half,
        hi: s.mean + half,
        level,
    }
}

/// The least-squares slope of `y` against `x` and its `level` confidence interval (module
/// documentation); `None` for fewer than 3 points or `x` without spread.
pub fn slope_interval(x: &[f64], y: &[f64], level: f64) -> Option<(f64, Interval)> {
    assert_eq!(x.len(), y.len(), "one y per x");
    let n = x.len();
    let nf = n as f64;
    let (xm, ym) = (x.iter().sum::<f64>() / nf, y.iter().sum::<f64>() / nf);
    let sxx: f64 = x.iter().map(|v| (v - xm).powi(2)).sum();
    if n < 3 || sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - xm) * (b - ym)).sum();
    let slope = sxy / sxx;
    let residual: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - ym - slope * (a - xm)).powi(2))
        .sum();
    let se = (residual / ((nf - 2.0) * sxx)).sqrt();
    let half = student_t_quantile(0.5 + level / 2.0, nf - 2.0) * se;
    Some((
        slope,
        Interval {
            lo: slope - half,
            hi: slope + half,
            level,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noisy_points() {
        // An exact line: the slope, with an interval of width 0.
        let (b, ci) = slope_interval(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 5.0, 7.0], 0.95).unwrap();
        assert!((b - 2.0).abs() < 1e-12 && (ci.hi - ci.lo).abs() < 1e-12);
        // x = 1..5, y = 2, 4, 5, 4, 5: b = 0.6, residuals 0.6²·… give SE(b) = √(2.4/3/10)
        // = 0.2828427, t(0.975, 3) = 3.182446.
        let (b, ci) =
            slope_interval(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 4.0, 5.0, 4.0, 5.0], 0.95).unwrap();
        let half = 3.182446 * 0.2828427;
        assert!((b - 0.6).abs() < 1e-12);
        assert!((ci.lo - (0.6 - half)).abs() < 1e-5 && (ci.hi - (0.6 + half)).abs() < 1e-5);
        assert!(slope_interval(&[1.0, 1.0, 1.0], &[0.0, 1.0, 2.0], 0.95).is_none());
        assert!(slope_interval(&[1.0, 2.0], &[0.0, 1.0], 0.95).is_none());
    }

    #[test]
    fn t_cdf_matches_tables() {
        // Two-sided 5% critical values: df 4 → 2.776445, df 10 → 2.228139.
        assert!((student_t_cdf(2.776445, 4.0) - 0.975).abs() < 1e-6);
        assert!((student_t_cdf(-2.228139, 10.0) - 0.025).abs() < 1e-6);
        assert!((student_t_cdf(0.0, 3.0) - 0.5).abs() < 1e-12);
        // df 1 is Cauchy: P(T ≤ 1) = 3/4.
        assert!((student_t_cdf(1.0, 1.0) - 0.75).abs() < 1e-10);
    }

    #[test]
    fn summary_of_a_sample() {
        let s = summarize(&[0.9, 0.92, 0.88, 0.91, 0.89], 1.0);
        assert!((s.mean - 0.9).abs() < 1e-12);
        assert!((s.sd - 0.0158113883).abs() < 1e-9);
        assert!(s.p_below < 1e-4 && s.p_above > 0.999);
    }

    #[test]
    fn quantile_inverts_the_cdf_and_matches_tables() {
        assert!((student_t_quantile(0.975, 4.0) - 2.776445).abs() < 1e-5);
        assert!((student_t_quantile(0.025, 10.0) + 2.228139).abs() < 1e-5);
        assert!((student_t_quantile(0.995, 2.0) - 9.924843).abs() < 1e-5);
    }

    #[test]
    fn interval_of_a_sample_and_its_reading_against_a_margin() {
        // mean 0.9, SE 0.0158114/√5 = 0.00707107; t(0.975, 4) = 2.776445.
        let s = summarize(&[0.9, 0.92, 0.88, 0.91, 0.89], 1.0);
        let ci = mean_interval(&s, 0.95);
        let half = 2.776445 * 0.0070710678;
        assert!((ci.lo - (0.9 - half)).abs() < 1e-6 && (ci.hi - (0.9 + half)).abs() < 1e-6);
        // The gain 1 − x in percent: 10 % ± 1.96 %.
        let gain = ci.affine(100.0, -100.0);
        assert!((gain.lo - (10.0 - 100.0 * half)).abs() < 1e-4);
        assert_eq!(gain.against_margin(1.0), MarginReading::Above);
        assert_eq!(gain.against_margin(10.0), MarginReading::Inconclusive);
        assert_eq!(gain.against_margin(20.0), MarginReading::Below);
    }
}
