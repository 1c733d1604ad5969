//! `tmcc-plot`: small, dependency-light plotting helpers for tmcc.
//!
//! Plain data in, one file out. Every function renders a complete figure to a
//! PNG (or an SVG when the path ends in `.svg`), writes it to `<path>.tmp` in
//! the same directory and renames it into place, so a reader never sees a
//! half-written file and a failed render leaves nothing behind.
//!
//! Text uses an embedded DejaVu Sans font (see `assets/LICENSE-DejaVu.txt`),
//! so no system font is needed.

mod bar;
mod colormap;
mod error;
mod font;
mod glyphs;
mod heatmap;
mod line;
mod output;
mod range;
mod style;

pub use bar::{bar_chart, Bar, BarChart};
pub use error::PlotError;
pub use heatmap::{heatmap, heatmaps_side_by_side, Heatmap};
pub use line::{grid_of_line_charts, line_chart, HLine, LineChart, Series};
pub use style::SeriesStyle;
