//! The section's two verdicts on one model, from its gains over seeds at each `p`.
//!
//! The gain of one trained instance is `g = 100·(1 − loss/naive)` in % of its naive loss
//! (the best constant beyond the computed features, `Task::naive_constant_loss`), with the
//! practical margin `m` declared before the numbers (the seed's claims' 1 %).
//!
//! - *Compressed computation*: at some `p` of the grid the model is meaningfully below
//!   naive. Per `p`, the Student-t interval of the mean gain over seeds at the
//!   Bonferroni level `1 − 0.05/n_p` (one test per `p`) is read against `m`: **yes** if at
//!   some `p` it lies entirely above `m`, **no** if at every `p` it lies entirely below,
//!   else inconclusive.
//! - *Computation in superposition*: compressed computation whose gain grows as features
//!   get sparser, and does not come from an embedding's noise. The least-squares slope `b`
//!   of `g` against `log10 p` over all (p, seed) points (gain per decade of `p`) with its
//!   95 % interval: the trend reads **growing** if `−b`'s interval lies above `m` per decade,
//!   **flat** if below it, else inconclusive. Where the model has an embedding, the
//!   transplant (the embedding folded into the weights, its residual noise gone) must keep
//!   a gain above `m` at the `p` where the model gains most (the follow-up paper's test
//!   of where the gain comes from). **yes** = compressed computation yes, trend growing,
//!   and (with an embedding) the transplant keeps its gain; **no** = compressed computation
//!   no, or the trend flat, or the transplant's gain interval below `m`; else inconclusive.

use serde::Serialize;
use tmcc_lab::stats::{mean_interval, slope_interval, summarize, Interval, MarginReading};

/// Coverage of the trend's interval and the family-wise coverage of the per-`p` tests.
pub const LEVEL: f64 = 0.95;

/// A three-way reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Yes,
    No,
    Inconclusive,
}

impl Answer {
    pub fn word(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::No => "no",
            Answer::Inconclusive => "inconclusive",
        }
    }
}

/// The gains of one `p` over seeds, and the transplant's where there is one.
#[derive(Clone, Debug, Serialize)]
pub struct PointGains {
    pub p: f64,
    pub gains: Vec<f64>,
    pub transplant_gains: Option<Vec<f64>>,
}

/// Mean gain at one `p` with its Bonferroni interval and its reading against the margin.
#[derive(Clone, Debug, Serialize)]
pub struct PointReading {
    pub p: f64,
    pub mean: f64,
    pub se: f64,
    pub interval: Interval,
    pub reading: MarginReading,
    /// The transplant's mean gain and interval at the same level.
    pub transplant: Option<(f64, Interval)>,
}

/// Both verdicts and what they rest on.
#[derive(Clone, Debug, Serialize)]
pub struct Verdicts {
    pub margin_percent: f64,
    pub points: Vec<PointReading>,
    pub compressed: Answer,
    /// Gain per decade of `p` (`b`), with its interval.
    pub slope_per_decade: Option<(f64, Interval)>,
    /// The trend's reading of `−b` against the margin (`Above`: the gain grows as p falls).
    pub trend: Option<MarginReading>,
    /// The transplant's reading at the best `p` (models with an embedding only).
    pub transplant: Option<MarginReading>,
    pub superposition: Answer,
}

/// The point of the largest mean gain.
pub fn largest_gain(points: &[PointReading]) -> Option<&PointReading> {
    points.iter().max_by(|a, b| a.mean.total_cmp(&b.mean))
}

/// Reads `points` (one per `p`, each with ≥ 2 seeds) against `margin` (in % of naive).
pub fn verdicts(points: &[PointGains], margin: f64) -> Verdicts {
    let level = 1.0 - (1.0 - LEVEL) / points.len().max(1) as f64;
    let interval = |g: &[f64]| {
        let s = summarize(g, 0.0);
        (s.mean, s.se, mean_interval(&s, level))
    };
    let readings: Vec<PointReading> = points
        .iter()
        .map(|pt| {
            let (mean, se, ci) = interval(&pt.gains);
            PointReading {
                p: pt.p,
                mean,
                se,
                interval: ci,
                reading: ci.against_margin(margin),
                transplant: pt.transplant_gains.as_deref().map(|g| {
                    let (m, _, ci) = interval(g);
                    (m, ci)
                }),
            }
        })
        .collect();
    let compressed = if readings.iter().any(|r| r.reading == MarginReading::Above) {
        Answer::Yes
    } else if readings.iter().all(|r| r.reading == MarginReading::Below) {
        Answer::No
    } else {
        Answer::Inconclusive
    };
    let (xs, ys): (Vec<f64>, Vec<f64>) = points
        .iter()
        .flat_map(|pt| pt.gains.iter().map(move |&g| (pt.p.log10(), g)))
        .unzip();
    let slope_per_decade = slope_interval(&xs, &ys, LEVEL);
    // The growth as p falls is −b; its interval is b's mirrored.
    let trend = slope_per_decade.map(|(_, ci)| ci.affine(0.0, -1.0).against_margin(margin));
    let transplant = largest_gain(&readings)
        .and_then(|r| r.transplant)
        .map(|(_, ci)| ci.against_margin(margin));
    let superposition = match (compressed, trend, transplant) {
        (Answer::No, _, _) => Answer::No,
        (_, Some(MarginReading::Below), _) | (_, _, Some(MarginReading::Below)) => Answer::No,
        (Answer::Yes, Some(MarginReading::Above), None | Some(MarginReading::Above)) => Answer::Yes,
        _ => Answer::Inconclusive,
    };
    Verdicts {
        margin_percent: margin,
        points: readings,
        compressed,
        slope_per_decade,
        trend,
        transplant,
        superposition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(p: f64, gains: &[f64], transplant: Option<&[f64]>) -> PointGains {
        PointGains {
            p,
            gains: gains.to_vec(),
            transplant_gains: transplant.map(<[f64]>::to_vec),
        }
    }

    #[test]
    fn a_gain_that_grows_as_p_falls_is_superposition() {
        let pts = [
            point(0.001, &[30.0, 31.0, 29.0], None),
            point(0.01, &[20.0, 21.0, 19.0], None),
            point(0.1, &[10.0, 11.0, 9.0], None),
        ];
        let v = verdicts(&pts, 1.0);
        assert_eq!(v.compressed, Answer::Yes);
        let (b, _) = v.slope_per_decade.unwrap();
        assert!((b + 10.0).abs() < 1e-9, "10 points of gain per decade: {b}");
        assert_eq!(v.trend, Some(MarginReading::Above));
        assert_eq!(v.superposition, Answer::Yes);
    }

    #[test]
    fn a_flat_gain_is_compressed_computation_only() {
        let pts = [
            point(0.001, &[20.0, 20.2, 19.8], None),
            point(0.01, &[20.1, 19.9, 20.0], None),
            point(0.1, &[20.0, 19.8, 20.2], None),
        ];
        let v = verdicts(&pts, 1.0);
        assert_eq!(v.compressed, Answer::Yes);
        assert_eq!(v.trend, Some(MarginReading::Below));
        assert_eq!(v.superposition, Answer::No);
    }

    #[test]
    fn a_gain_the_transplant_loses_is_not_superposition() {
        let lost = [-5.0, -4.0, -6.0];
        let pts = [
            point(0.001, &[30.0, 31.0, 29.0], Some(&lost)),
            point(0.01, &[20.0, 21.0, 19.0], Some(&lost)),
            point(0.1, &[10.0, 11.0, 9.0], Some(&lost)),
        ];
        let v = verdicts(&pts, 1.0);
        assert_eq!(v.transplant, Some(MarginReading::Below));
        assert_eq!(v.superposition, Answer::No);
        let kept = [28.0, 29.0, 30.0];
        let pts = [
            point(0.001, &[30.0, 31.0, 29.0], Some(&kept)),
            point(0.01, &[20.0, 21.0, 19.0], Some(&lost)),
            point(0.1, &[10.0, 11.0, 9.0], Some(&lost)),
        ];
        assert_eq!(verdicts(&pts, 1.0).superposition, Answer::Yes);
    }

    #[test]
    fn no_gain_anywhere_is_no_and_a_straddling_one_is_inconclusive() {
        let pts = [
            point(0.001, &[-3.0, -2.0, -4.0], None),
            point(0.1, &[0.1, -0.1, 0.0], None),
        ];
        let v = verdicts(&pts, 1.0);
        assert_eq!(v.compressed, Answer::No);
        assert_eq!(v.superposition, Answer::No);
        let pts = [
            point(0.001, &[0.0, 2.0, 4.0], None),
            point(0.1, &[0.1, -0.1, 0.0], None),
        ];
        assert_eq!(verdicts(&pts, 1.0).compressed, Answer::Inconclusive);
    }

    #[test]
    fn the_per_p_intervals_are_bonferroni_corrected() {
        // Three seeds, mean 2, SE 0.11547: the 95 % interval (t(0.975, 2) = 4.303) starts at
        // 1.503, above the margin 1.2; at 1 − 0.05/3 (t(0.99167, 2) = 7.649) at 1.117.
        let g = [1.8, 2.0, 2.2];
        let one = verdicts(&[point(0.01, &g, None)], 1.2);
        assert_eq!(one.points[0].reading, MarginReading::Above);
        assert!((one.points[0].interval.lo - 1.5032).abs() < 1e-3);
        let three = verdicts(
            &[
                point(0.001, &g, None),
                point(0.01, &g, None),
                point(0.1, &g, None),
            ],
            1.2,
        );
        assert_eq!(three.points[0].reading, MarginReading::Inconclusive);
        assert!((three.points[0].interval.lo - 1.1168).abs() < 1e-3);
    }
}
