//! Matrix heatmaps with a colour bar, alone or side by side.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::colormap::ColorMap;
use crate::output::{self, Figure};
use crate::style::{fmt_num, text_font, title_font, CHART_SIZE};
use crate::PlotError;

/// A `rows × cols` matrix, drawn with row 0 at the top.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub rows: usize,
    pub cols: usize,
    /// Row-major, `rows * cols` values; NaN/inf cells are drawn grey.
    pub values: Vec<f64>,
    /// Diverging colour map centred on 0 if true, sequential otherwise.
    pub symmetric: bool,
}

/// Draws one heatmap (900×600) with a colour bar to `path` (PNG or `.svg`).
pub fn heatmap(path: &Path, h: &Heatmap) -> Result<(), PlotError> {
    output::render(path, CHART_SIZE, &Prepared::new(h)?)
}

/// Draws `maps` in one row under a common `title`, each with its own colour
/// bar (and so its own value range).
pub fn heatmaps_side_by_side(path: &Path, title: &str, maps: &[Heatmap]) -> Result<(), PlotError> {
    if maps.is_empty() {
        return Err(PlotError::empty(title, "no heatmaps"));
    }
    let row = Row {
        title,
        maps: maps.iter().map(Prepared::new).collect::<Result<_, _>>()?,
    };
    output::render(path, (maps.len() as u32 * 600, 650), &row)
}

struct Row<'a> {
    title: &'a str,
    maps: Vec<Prepared<'a>>,
}

impl Figure for Row<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let area = area.margin(6, 0, 0, 0).titled(self.title, title_font())?;
        for (map, cell) in self
            .maps
            .iter()
            .zip(area.split_evenly((1, self.maps.len())))
        {
            map.draw(&cell)?;
        }
        Ok(())
    }
}

/// A validated heatmap and its fitted colour map.
struct Prepared<'a> {
    h: &'a Heatmap,
    cmap: ColorMap,
    rows: i32,
    cols: i32,
}

impl<'a> Prepared<'a> {
    fn new(h: &'a Heatmap) -> Result<Self, PlotError> {
        if h.rows == 0 || h.cols == 0 || h.values.is_empty() {
            return Err(PlotError::empty(&h.title, "heatmap has no cells"));
        }
        let as_i32 = |n: usize| i32::try_from(n).ok().filter(|&n| n < i32::MAX / 2);
        let (Some(rows), Some(cols)) = (as_i32(h.rows), as_i32(h.cols)) else {
            return Err(PlotError::invalid(&h.title, "heatmap is too large"));
        };
        if h.rows.checked_mul(h.cols) != Some(h.values.len()) {
            let why = format!(
                "{}x{} heatmap needs {} values, got {}",
                h.rows,
                h.cols,
                h.rows.saturating_mul(h.cols),
                h.values.len()
            );
            return Err(PlotError::invalid(&h.title, why));
        }
        let cmap = ColorMap::fit(&h.values, h.symmetric)
            .ok_or_else(|| PlotError::invalid(&h.title, "no finite value"))?;
        Ok(Self {
            h,
            cmap,
            rows,
            cols,
        })
    }

    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), PlotError> {
        let (rows, cols) = (self.rows, self.cols);
        // Ticks sit on cell boundaries: tick k is the edge before index k.
        let x_ticks = index_ticks(cols);
        let y_ticks = index_ticks(rows).into_iter().map(|k| rows - k).collect();
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(
                (0..cols).with_key_points(x_ticks),
                (0..rows).with_key_points(y_ticks),
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .y_label_formatter(&|v| (rows - v).to_string())
            .x_desc(self.h.x_label.as_str())
            .y_desc(self.h.y_label.as_str())
            .label_style(text_font(12))
            .axis_desc_style(text_font(15))
            .draw()?;
        let cells = (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c)));
        chart.draw_series(cells.map(|(r, c)| {
            let v = self.h.values[r as usize * self.h.cols + c as usize];
            let top = rows - r;
            Rectangle::new([(c, top - 1), (c + 1, top)], self.cmap.color(v).filled())
        }))?;
        Ok(())
    }

    fn draw_color_bar<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), PlotError> {
        let (lo, hi) = (self.cmap.lo, self.cmap.hi);
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .margin_left(4)
            .x_label_area_size(44)
            .right_y_label_area_size(62)
            .build_cartesian_2d(0.0..1.0, lo..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .disable_x_axis()
            .y_labels(7)
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(text_font(12))
            .draw()?;
        const STEPS: usize = 128;
        let step = (hi - lo) / STEPS as f64;
        chart.draw_series((0..STEPS).map(|k| {
            let v0 = lo + step * k as f64;
            let color = self.cmap.color(v0 + step / 2.0);
            Rectangle::new([(0.0, v0), (1.0, v0 + step)], color.filled())
        }))?;
        chart.draw_series([Rectangle::new([(0.0, lo), (1.0, hi)], BLACK.mix(0.5))])?;
        Ok(())
    }
}

impl Figure for Prepared<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let area = area
            .margin(6, 0, 0, 0)
            .titled(&self.h.title, title_font())?;
        let width = area.dim_in_pixel().0;
        let (cells, bar) = area.split_horizontally(width.saturating_sub(100));
        self.draw_cells(&cells)?;
        self.draw_color_bar(&bar)
    }
}

/// `0, s, 2s, ... <= n` with a 1-2-5 step `s` giving at most ~8 ticks.
fn index_ticks(n: i32) -> Vec<i32> {
    let n = i64::from(n);
    let mut mag = 1i64;
    let step = loop {
        if let Some(s) = [mag, 2 * mag, 5 * mag].into_iter().find(|s| n / s <= 8) {
            break s;
        }
        mag *= 10;
    };
    (0..=n).step_by(step as usize).map(|k| k as i32).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_ticks_are_few_and_round() {
        assert_eq!(super::index_ticks(1), vec![0, 1]);
        assert_eq!(super::index_ticks(32), vec![0, 5, 10, 15, 20, 25, 30]);
        assert!(super::index_ticks(1 << 30).len() <= 9);
    }
}
