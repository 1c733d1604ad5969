//! Bar charts: one bar per category with ± error whiskers and optional
//! horizontal reference lines.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::output::{self, Figure};
use crate::range::Extent;
use crate::style::{color, fmt_num, text_font, title_font, CHART_SIZE};
use crate::{HLine, PlotError};

/// One category: its bar height and the half-width of its error whisker
/// (0 or non-finite for none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub err: f64,
}

/// Categories along x, values on y.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
    pub hlines: Vec<HLine>,
}

/// Draws `chart` (900×600) to `path` (PNG, or SVG if it ends in `.svg`).
/// Bars with a non-finite value are left out but keep their slot and label.
pub fn bar_chart(path: &Path, chart: &BarChart) -> Result<(), PlotError> {
    output::render(path, CHART_SIZE, &Prepared::new(chart)?)
}

/// Each category spans `SLOT` units of the integer x axis; bars fill 80%.
const SLOT: i32 = 10;

struct Prepared<'a> {
    chart: &'a BarChart,
    y: Range<f64>,
    hlines: Vec<(&'a HLine, RGBColor)>,
}

impl<'a> Prepared<'a> {
    fn new(chart: &'a BarChart) -> Result<Self, PlotError> {
        let name = chart.title.as_str();
        if chart.bars.is_empty() {
            return Err(PlotError::empty(name, "no bars"));
        }
        if chart.bars.len() > 100_000 {
            return Err(PlotError::invalid(name, "too many bars"));
        }
        if !chart.bars.iter().any(|b| b.value.is_finite()) {
            return Err(PlotError::invalid(name, "no bar has a finite value"));
        }
        let mut ye = Extent::new(false);
        ye.add(0.0);
        for b in chart.bars.iter().filter(|b| b.value.is_finite()) {
            ye.add(b.value);
            if let Some(e) = whisker(b) {
                ye.add(b.value - e);
                ye.add(b.value + e);
            }
        }
        let mut hlines = Vec::new();
        for (j, h) in chart.hlines.iter().enumerate() {
            if h.y.is_finite() {
                ye.add(h.y);
                hlines.push((h, color(chart.bars.len() + j)));
            }
        }
        Ok(Self {
            chart,
            y: ye.padded_from_zero(),
            hlines,
        })
    }

    /// Whether category labels must be turned vertical to fit their slots.
    fn rotate_labels(&self) -> bool {
        let slot_px = 800.0 / self.chart.bars.len() as f64;
        let longest = self.chart.bars.iter().map(|b| b.label.chars().count());
        longest.max().unwrap_or(0) as f64 * 7.5 > 0.95 * slot_px
    }
}

fn whisker(b: &Bar) -> Option<f64> {
    (b.err.is_finite() && b.err > 0.0).then_some(b.err)
}

impl Figure for Prepared<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let bars = &self.chart.bars;
        let n = bars.len() as i32;
        let centres: Vec<i32> = (0..n).map(|i| i * SLOT + SLOT / 2).collect();
        let rotate = self.rotate_labels();
        let longest = bars.iter().map(|b| b.label.chars().count()).max();
        let label_area = if rotate {
            (longest.unwrap_or(0) as u32 * 8 + 16).min(220)
        } else {
            44
        };
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(12)
            .x_label_area_size(label_area)
            .y_label_area_size(64);
        if !self.chart.title.is_empty() {
            builder.caption(&self.chart.title, title_font());
        }
        let x = (0..n * SLOT).with_key_points(centres);
        let mut chart = builder.build_cartesian_2d(x, self.y.clone())?;
        // Vertical labels are drawn below by hand: plotters centres rotated
        // tick labels on the tick, which pushes half of them into the plot.
        let label_of = |v: &i32| {
            let i = v.div_euclid(SLOT) as usize;
            let label = bars.get(i).filter(|_| !rotate);
            label.map_or(String::new(), |b| b.label.clone())
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .label_style(text_font(13))
            .x_label_formatter(&label_of)
            .y_label_formatter(&|v| fmt_num(*v))
            .y_desc(self.chart.y_label.as_str())
            .axis_desc_style(text_font(16))
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        if rotate {
            let style = text_font(13)
                .transform(FontTransform::Rotate90)
                .pos(Pos::new(HPos::Left, VPos::Center));
            let base = area.get_base_pixel();
            for (b, i) in bars.iter().zip(0..) {
                let (x, y) = chart.backend_coord(&(i * SLOT + SLOT / 2, self.y.start));
                area.draw_text(&b.label, &style, (x - base.0, y - base.1 + 10))?;
            }
        }
        let finite = bars.iter().zip(0..).filter(|(b, _)| b.value.is_finite());
        chart.draw_series(finite.clone().map(|(b, i)| {
            let (x0, x1) = (i * SLOT + 1, (i + 1) * SLOT - 1);
            Rectangle::new(
                [(x0, 0.0), (x1, b.value)],
                color(i as usize).mix(0.85).filled(),
            )
        }))?;
        let with_err = finite.filter_map(|(b, i)| whisker(b).map(|e| (b.value, e, i)));
        let style = BLACK.stroke_width(2);
        for (v, e, i) in with_err {
            let x = i * SLOT + SLOT / 2;
            let (lo, hi) = ((x, v - e), (x, v + e));
            chart.draw_series([PathElement::new(vec![lo, hi], style)])?;
            let cap = |c| EmptyElement::at(c) + PathElement::new(vec![(-6, 0), (6, 0)], style);
            chart.draw_series([cap(lo), cap(hi)])?;
        }
        for &(h, c) in &self.hlines {
            let line = [(0, h.y), (n * SLOT, h.y)];
            let style = c.stroke_width(2);
            let anno = chart.draw_series(DashedLineSeries::new(line, 10, 6, style))?;
            if !h.label.is_empty() {
                anno.label(h.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            }
        }
        if self.hlines.iter().any(|(h, _)| !h.label.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(text_font(13))
                .draw()?;
        }
        Ok(())
    }
}
