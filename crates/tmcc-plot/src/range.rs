//! Axis extents: collect finite (and, for log axes, positive) values, then pad.

use std::ops::Range;

/// Running min/max of the values an axis must show.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Extent {
    pub(crate) fn new(log: bool) -> Self {
        Self {
            log,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }

    /// Whether `v` can be placed on this axis (finite, and positive if log).
    pub(crate) fn accepts(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }

    /// Includes `v` if the axis accepts it.
    pub(crate) fn add(&mut self, v: f64) {
        if self.accepts(v) {
            self.lo = self.lo.min(v);
            self.hi = self.hi.max(v);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    /// The extent padded by 5% on each side (in log space for log axes).
    /// A degenerate extent is widened so the axis is never zero-width.
    pub(crate) fn padded(&self) -> Range<f64> {
        if self.log {
            let (lo, hi) = if self.lo == self.hi {
                // One value: show half a decade either side.
                (self.lo.log10() - 0.5, self.hi.log10() + 0.5)
            } else {
                pad(self.lo.log10(), self.hi.log10())
            };
            10f64.powf(lo)..10f64.powf(hi)
        } else {
            let (lo, hi) = pad(self.lo, self.hi);
            lo..hi
        }
    }

    /// Like `padded`, but a bound of exactly 0 on a linear axis stays at 0
    /// (bars grow from the axis, not from a gap below it).
    pub(crate) fn padded_from_zero(&self) -> Range<f64> {
        let r = self.padded();
        let lo = if self.lo == 0.0 && !self.log {
            0.0
        } else {
            r.start
        };
        let hi = if self.hi == 0.0 && !self.log {
            0.0
        } else {
            r.end
        };
        lo..hi
    }
}

fn pad(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    let p = if span > 0.0 {
        0.05 * span
    } else if lo != 0.0 {
        0.05 * lo.abs()
    } else {
        0.5
    };
    (lo - p, hi + p)
}

/// Ticks for a log axis over `r` (positive): labelled `1, 2, 5 × 10^k` (all
/// of `1..9` within about a decade, fewer over many decades) and unlabelled
/// light ones at the remaining `1..9 × 10^k`.
pub(crate) fn log_ticks(r: &Range<f64>) -> (Vec<f64>, Vec<f64>) {
    let (lo, hi) = (r.start, r.end);
    let decades = (hi / lo).log10();
    let mantissas: &[f64] = match decades {
        d if d <= 1.2 => &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        d if d <= 3.0 => &[1.0, 2.0, 5.0],
        _ => &[1.0],
    };
    let every = (decades / 10.0).ceil().max(1.0) as i32;
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let inside = |v: &f64| (lo..=hi).contains(v);
    let mut bold = Vec::new();
    let mut light = Vec::new();
    for k in k0..=k1 {
        // Dividing by an exact power of ten rounds correctly (10^-3 does not).
        let p = 10f64.powi(k.abs());
        for m in 1..=9 {
            let v = if k < 0 {
                f64::from(m) / p
            } else {
                f64::from(m) * p
            };
            let labelled = mantissas.contains(&f64::from(m)) && k.rem_euclid(every) == 0;
            if !inside(&v) {
                continue;
            } else if labelled {
                bold.push(v);
            } else if decades <= 6.0 {
                light.push(v);
            }
        }
    }
    if bold.len() < 3 && decades < 1.0 {
        bold = linear_ticks(lo, hi, 5.0);
    }
    (bold, light)
}

/// About `n` evenly spaced round ticks (1-2-5 steps) within `[lo, hi]`.
fn linear_ticks(lo: f64, hi: f64, n: f64) -> Vec<f64> {
    let raw = (hi - lo) / n;
    if !(raw > 0.0 && raw.is_finite()) {
        return vec![lo, hi];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let (i0, i1) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    (i0..=i1).map(|i| i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use super::Extent;

    #[test]
    fn linear_pads_five_percent() {
        let mut e = Extent::new(false);
        [0.0, 10.0, f64::NAN].into_iter().for_each(|v| e.add(v));
        let r = e.padded();
        assert!((r.start + 0.5).abs() < 1e-12 && (r.end - 10.5).abs() < 1e-12);
        assert_eq!(e.padded_from_zero().start, 0.0);
    }

    #[test]
    fn log_ticks_are_round_and_inside() {
        for r in [0.4..2.2, 1e-3..1e3, 1e-30..1e30, 0.95..1.05, 10.0..2000.0] {
            let (bold, light) = super::log_ticks(&r);
            assert!(bold.len() >= 2 && bold.len() <= 12, "{r:?}: {bold:?}");
            let inside = r.start..=r.end;
            assert!(
                bold.iter().chain(&light).all(|v| inside.contains(v)),
                "{r:?}"
            );
        }
    }

    #[test]
    fn log_skips_non_positive_and_degenerate_widens() {
        let mut e = Extent::new(true);
        [-1.0, 0.0, 100.0].into_iter().for_each(|v| e.add(v));
        let r = e.padded();
        assert!(r.start < 100.0 && r.end > 100.0 && r.start > 0.0);
    }
}
