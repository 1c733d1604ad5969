//! Colour maps for heatmaps: sequential (viridis-like) and diverging
//! (blue–white–red, centred on 0).

use plotters::style::RGBColor;

const VIRIDIS: [(u8, u8, u8); 6] = [
    (68, 1, 84),
    (65, 68, 135),
    (42, 120, 142),
    (34, 168, 132),
    (122, 209, 81),
    (253, 231, 37),
];

const DIVERGING: [(u8, u8, u8); 5] = [
    (33, 102, 172),
    (146, 197, 222),
    (247, 247, 247),
    (244, 165, 130),
    (178, 24, 43),
];

/// Colour used for cells whose value is NaN or infinite.
pub(crate) const MISSING: RGBColor = RGBColor(200, 200, 200);

/// A value range and the stops it is mapped onto.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColorMap {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    stops: &'static [(u8, u8, u8)],
}

impl ColorMap {
    /// Fits the map to the finite `values`; `None` if there are none.
    /// A symmetric map spans `[-m, m]` with `m = max |v|`, so 0 is white.
    pub(crate) fn fit(values: &[f64], symmetric: bool) -> Option<Self> {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if lo > hi {
            return None;
        }
        let (lo, hi, stops) = if symmetric {
            let m = lo.abs().max(hi.abs());
            let m = if m > 0.0 { m } else { 1.0 };
            (-m, m, &DIVERGING[..])
        } else if lo == hi {
            let p = if lo == 0.0 { 0.5 } else { 0.05 * lo.abs() };
            (lo - p, hi + p, &VIRIDIS[..])
        } else {
            (lo, hi, &VIRIDIS[..])
        };
        Some(Self { lo, hi, stops })
    }

    /// The colour of `v` (values outside the range are clamped).
    pub(crate) fn color(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return MISSING;
        }
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        let pos = t * (self.stops.len() - 1) as f64;
        let i = (pos.floor() as usize).min(self.stops.len() - 2);
        let f = pos - i as f64;
        let (a, b) = (self.stops[i], self.stops[i + 1]);
        let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

#[cfg(test)]
mod tests {
    use super::ColorMap;

    #[test]
    fn symmetric_map_is_centred_on_zero() {
        let m = ColorMap::fit(&[-1.0, 3.0, f64::NAN], true).unwrap();
        assert_eq!((m.lo, m.hi), (-3.0, 3.0));
        let w = m.color(0.0);
        assert_eq!((w.0, w.1, w.2), (247, 247, 247));
    }

    #[test]
    fn sequential_map_handles_constant_and_empty() {
        assert!(ColorMap::fit(&[f64::NAN], false).is_none());
        let m = ColorMap::fit(&[2.0, 2.0], false).unwrap();
        assert!(m.lo < 2.0 && m.hi > 2.0);
        let _ = m.color(f64::INFINITY);
    }
}
