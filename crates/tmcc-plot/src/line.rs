//! Line charts (linear or log axes, ± error bars, horizontal reference lines)
//! and grids of them as small multiples.

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::output::{self, Figure};
use crate::range::{log_ticks, Extent};
use crate::style::{color, fmt_num, text_font, title_font, SeriesStyle, CHART_SIZE};
use crate::PlotError;

/// One curve: `x[i], y[i]`, optionally with a ± error `err[i]` per point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Half-width of the vertical error bar at each point (same length as `y`).
    pub err: Option<Vec<f64>>,
    pub style: SeriesStyle,
}

/// A labelled horizontal reference line, e.g. the naive-loss level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HLine {
    pub label: String,
    pub y: f64,
}

/// A chart of one or more series against shared axes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
}

/// Draws `chart` (900×600) to `path`: PNG, or SVG if `path` ends in `.svg`.
///
/// Non-finite points (and non-positive ones on a log axis) are skipped; it is
/// an error if no series is given, a series is empty or has mismatched
/// lengths, or no point at all can be placed.
pub fn line_chart(path: &Path, chart: &LineChart) -> Result<(), PlotError> {
    output::render(path, CHART_SIZE, &Prepared::new(chart)?)
}

/// Draws `panels` as a grid with `cols` columns under a common `title`.
pub fn grid_of_line_charts(
    path: &Path,
    title: &str,
    panels: &[LineChart],
    cols: usize,
) -> Result<(), PlotError> {
    if panels.is_empty() {
        return Err(PlotError::empty(title, "no panels"));
    }
    if cols == 0 {
        return Err(PlotError::invalid(title, "grid needs at least one column"));
    }
    let cols = cols.min(panels.len());
    let rows = panels.len().div_ceil(cols);
    let grid = Grid {
        title,
        cols,
        rows,
        panels: panels.iter().map(Prepared::new).collect::<Result<_, _>>()?,
    };
    let size = (cols as u32 * 480, rows as u32 * 340 + 50);
    output::render(path, size, &grid)
}

struct Grid<'a> {
    title: &'a str,
    cols: usize,
    rows: usize,
    panels: Vec<Prepared<'a>>,
}

impl Figure for Grid<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let area = area.margin(6, 0, 0, 0).titled(self.title, title_font())?;
        let cells = area.split_evenly((self.rows, self.cols));
        for (panel, cell) in self.panels.iter().zip(&cells) {
            panel.draw(cell)?;
        }
        Ok(())
    }
}

/// A series reduced to what can be drawn.
struct PreparedSeries<'a> {
    src: &'a Series,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    /// `(x, y - err, y + err)` for points with a positive, finite error.
    whiskers: Vec<(f64, f64, f64)>,
}

/// A validated line chart with its padded axis ranges.
struct Prepared<'a> {
    chart: &'a LineChart,
    series: Vec<PreparedSeries<'a>>,
    hlines: Vec<(&'a HLine, RGBColor)>,
    x: Range<f64>,
    y: Range<f64>,
}

impl<'a> Prepared<'a> {
    fn new(chart: &'a LineChart) -> Result<Self, PlotError> {
        let name = chart.title.as_str();
        if chart.series.is_empty() {
            return Err(PlotError::empty(name, "no series"));
        }
        let (mut xe, mut ye) = (Extent::new(chart.log_x), Extent::new(chart.log_y));
        let mut series = Vec::with_capacity(chart.series.len());
        for (i, s) in chart.series.iter().enumerate() {
            let p = prepare_series(name, s, color(i), &xe, &ye)?;
            for &(x, y) in &p.points {
                xe.add(x);
                ye.add(y);
            }
            for &(_, lo, hi) in &p.whiskers {
                ye.add(lo);
                ye.add(hi);
            }
            series.push(p);
        }
        if xe.is_empty() || ye.is_empty() {
            let why = if chart.log_x || chart.log_y {
                "no finite point (values <= 0 are skipped on log axes)"
            } else {
                "no finite point"
            };
            return Err(PlotError::invalid(name, why));
        }
        let mut hlines = Vec::new();
        for (j, h) in chart.hlines.iter().enumerate() {
            if ye.accepts(h.y) {
                ye.add(h.y);
                hlines.push((h, color(series.len() + j)));
            }
        }
        Ok(Self {
            chart,
            series,
            hlines,
            x: xe.padded(),
            y: ye.padded(),
        })
    }

    fn wants_legend(&self) -> bool {
        let labelled = self.series.iter().filter(|s| !s.src.label.is_empty());
        labelled.count() > 1 || self.hlines.iter().any(|(h, _)| !h.label.is_empty())
    }

    fn draw_on<DB, X, Y>(&self, area: &DrawingArea<DB, Shift>, x: X, y: Y) -> Result<(), PlotError>
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64);
        if !self.chart.title.is_empty() {
            builder.caption(&self.chart.title, title_font());
        }
        let mut chart = builder.build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc(self.chart.x_label.as_str())
            .y_desc(self.chart.y_label.as_str())
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(text_font(13))
            .axis_desc_style(text_font(16))
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        for s in &self.series {
            draw_series(&mut chart, s, self.y.start)?;
        }
        for &(h, c) in &self.hlines {
            let line = [(self.x.start, h.y), (self.x.end, h.y)];
            let style = c.stroke_width(2);
            let anno = chart.draw_series(DashedLineSeries::new(line, 10, 6, style))?;
            if !h.label.is_empty() {
                anno.label(h.label.as_str())
                    .legend(move |p| legend_mark(p, SeriesStyle::Dashed, style));
            }
        }
        if self.wants_legend() {
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

impl Figure for Prepared<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let (x, y) = (self.x.clone(), self.y.clone());
        // plotters' own log ticks are sparse; use 1-2-5 style ones instead.
        let log = |r: Range<f64>| {
            let (bold, light) = log_ticks(&r);
            r.log_scale().with_key_points(bold).with_light_points(light)
        };
        match (self.chart.log_x, self.chart.log_y) {
            (false, false) => self.draw_on(area, x, y),
            (true, false) => self.draw_on(area, log(x), y),
            (false, true) => self.draw_on(area, x, log(y)),
            (true, true) => self.draw_on(area, log(x), log(y)),
        }
    }
}

fn prepare_series<'a>(
    figure: &str,
    s: &'a Series,
    color: RGBColor,
    xe: &Extent,
    ye: &Extent,
) -> Result<PreparedSeries<'a>, PlotError> {
    if s.x.is_empty() && s.y.is_empty() {
        return Err(PlotError::empty(
            figure,
            format!("series '{}' has no points", s.label),
        ));
    }
    if s.x.len() != s.y.len() {
        let why = format!(
            "series '{}' has {} x values but {} y values",
            s.label,
            s.x.len(),
            s.y.len()
        );
        return Err(PlotError::invalid(figure, why));
    }
    if let Some(err) = s.err.as_ref().filter(|e| e.len() != s.y.len()) {
        let why = format!(
            "series '{}' has {} error values for {} points",
            s.label,
            err.len(),
            s.y.len()
        );
        return Err(PlotError::invalid(figure, why));
    }
    let mut points = Vec::with_capacity(s.x.len());
    let mut whiskers = Vec::new();
    for (i, (&x, &y)) in s.x.iter().zip(&s.y).enumerate() {
        if !(xe.accepts(x) && ye.accepts(y)) {
            continue;
        }
        points.push((x, y));
        let e = s.err.as_ref().map_or(f64::NAN, |e| e[i]);
        if e.is_finite() && e > 0.0 {
            whiskers.push((x, y - e, y + e));
        }
    }
    Ok(PreparedSeries {
        src: s,
        color,
        points,
        whiskers,
    })
}

/// Draws one series; whisker bottoms are clamped to `y_floor` (log axes).
fn draw_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    s: &PreparedSeries,
    y_floor: f64,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let line = s.color.stroke_width(2);
    let marker = s.color.filled();
    let style = s.src.style;
    let pts = s.points.iter().copied();
    let anno = match style {
        SeriesStyle::Line | SeriesStyle::LinePoints => {
            chart.draw_series(LineSeries::new(pts, line))?
        }
        SeriesStyle::Dashed => chart.draw_series(DashedLineSeries::new(pts, 10, 6, line))?,
        SeriesStyle::Points => chart.draw_series(pts.map(|p| Circle::new(p, 3, marker)))?,
    };
    if !s.src.label.is_empty() {
        anno.label(s.src.label.as_str())
            .legend(move |p| legend_mark(p, style, line));
    }
    if style == SeriesStyle::LinePoints {
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, marker)))?;
    }
    let whisker = s.color.stroke_width(1);
    chart.draw_series(
        s.whiskers
            .iter()
            .map(|&(x, lo, hi)| PathElement::new(vec![(x, lo.max(y_floor)), (x, hi)], whisker)),
    )?;
    let caps = s.whiskers.iter().flat_map(|&(x, lo, hi)| {
        let lo = (lo > y_floor).then_some((x, lo));
        lo.into_iter().chain([(x, hi)])
    });
    chart.draw_series(
        caps.map(|c| EmptyElement::at(c) + PathElement::new(vec![(-4, 0), (4, 0)], whisker)),
    )?;
    Ok(())
}

/// The legend swatch for a series style, centred 10 px right of `(x, y)`.
fn legend_mark<'a, DB: DrawingBackend + 'a>(
    (x, y): (i32, i32),
    style: SeriesStyle,
    line: ShapeStyle,
) -> impl IntoDynElement<'a, DB, (i32, i32)> {
    let none = TRANSPARENT.stroke_width(0);
    let marker = line.color.filled();
    let (line, gap, marker) = match style {
        SeriesStyle::Line => (line, 0, none),
        SeriesStyle::Dashed => (line, 3, none),
        SeriesStyle::Points => (none, 0, marker),
        SeriesStyle::LinePoints => (line, 0, marker),
    };
    EmptyElement::at((x + 10, y))
        + PathElement::new(vec![(-10, 0), (-gap, 0)], line)
        + PathElement::new(vec![(gap, 0), (10, 0)], line)
        + Circle::new((0, 0), 3, marker)
}
