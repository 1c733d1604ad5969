//! The statistics of a measurement: order statistics of repeated timings (median, p10,
//! p90, by linear interpolation between order statistics — numpy's default, the same rule
//! `python/torch_step.py` uses, so tmcc's and PyTorch's numbers are comparable), and
//! throughput under a time budget (iterations per second of a loop that runs at least a
//! few and at most a fixed number of iterations).

use std::time::Instant;

/// Order statistics of a sample (e.g. step times, seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
}

impl Stats {
    /// The median, p10 and p90 of `t` (non-empty).
    pub fn of(mut t: Vec<f64>) -> Stats {
        assert!(!t.is_empty(), "Stats::of needs at least one value");
        t.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = (t.len() - 1) as f64 * p;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            t[lo] + (t[hi] - t[lo]) * (pos - lo as f64)
        };
        Stats {
            median: q(0.5),
            p10: q(0.1),
            p90: q(0.9),
        }
    }
}

/// A loop run for a time budget: at least [`Budgeted::MIN`] iterations, then more while
/// the budget lasts, at most [`Budgeted::MAX`].
///
/// ```
/// # use tmcc_benches::stats::Budgeted;
/// let mut run = Budgeted::start(0.0);
/// while run.more() {}
/// assert_eq!(run.count(), Budgeted::MIN);
/// ```
#[derive(Debug)]
pub struct Budgeted {
    t0: Instant,
    seconds: f64,
    n: u32,
}

impl Budgeted {
    pub const MIN: u32 = 3;
    pub const MAX: u32 = 1000;

    /// Starts the clock.
    pub fn start(seconds: f64) -> Budgeted {
        Budgeted {
            t0: Instant::now(),
            seconds,
            n: 0,
        }
    }

    /// Whether to run another iteration; counts it if so.
    pub fn more(&mut self) -> bool {
        let more = self.n < Self::MIN
            || (self.t0.elapsed().as_secs_f64() < self.seconds && self.n < Self::MAX);
        if more {
            self.n += 1;
        }
        more
    }

    /// Iterations started so far.
    pub fn count(&self) -> u32 {
        self.n
    }

    /// Iterations per second since [`Budgeted::start`].
    pub fn rate(&self) -> f64 {
        self.n as f64 / self.t0.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], [10, 50, 90]) = [1.3, 2.5, 3.7]
        let s = Stats::of(vec![4.0, 1.0, 3.0, 2.0]);
        assert!((s.p10 - 1.3).abs() < 1e-12);
        assert!((s.median - 2.5).abs() < 1e-12);
        assert!((s.p90 - 3.7).abs() < 1e-12);
        let one = Stats::of(vec![0.5]);
        assert_eq!((one.p10, one.median, one.p90), (0.5, 0.5, 0.5));
    }

    #[test]
    fn a_budget_runs_at_least_min_and_at_most_max() {
        let mut run = Budgeted::start(1e9);
        while run.more() {}
        assert_eq!(run.count(), Budgeted::MAX);
    }
}
