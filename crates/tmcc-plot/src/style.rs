//! Shared look: the colour palette, series styles, fonts and tick labels.

use plotters::style::{IntoFont, RGBColor, TextStyle};

use crate::font::FAMILY;

/// Default size of a single chart, in pixels.
pub(crate) const CHART_SIZE: (u32, u32) = (900, 600);

/// How a line-chart series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesStyle {
    /// A solid line through the points.
    #[default]
    Line,
    /// Markers only.
    Points,
    /// A solid line with a marker on each point.
    LinePoints,
    /// A dashed line through the points.
    Dashed,
}

/// Tableau-10: distinct, colour-blind-friendlier than plotters' defaults.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th palette colour (cycling).
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn title_font() -> TextStyle<'static> {
    (FAMILY, 22).into_font().into()
}

pub(crate) fn text_font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// Compact tick label: `0.25`, `1200`, `1e-4`, `3.2e6`. Ticks within 1e-12 of zero are
/// rounding residue of the tick arithmetic (e.g. `-2.2e-16`) and print as `0`.
pub(crate) fn fmt_num(v: f64) -> String {
    let v = if v.abs() < 1e-12 { 0.0 } else { v };
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_num;

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(1200.0), "1200");
        assert_eq!(fmt_num(1e-4), "1e-4");
        assert_eq!(fmt_num(3.2e6), "3.2e6");
        assert_eq!(fmt_num(-2.5), "-2.5");
    }
}
