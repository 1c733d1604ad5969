//! Summary statistics and the one-sample Student t-test used for verdicts.
//!
//! For values `v_1..v_n` (e.g. loss/naive of `n` seeds): mean, sample standard deviation
//! `s`, standard error `s/√n`, and `t = (mean − μ0)/SE` with `n − 1` degrees of freedom.
//! The t distribution's CDF is `1 − ½·I_{ν/(ν+t²)}(ν/2, ½)` for `t ≥ 0`, with the
//! regularized incomplete beta `I` evaluated by its continued fraction (modified Lentz).

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
