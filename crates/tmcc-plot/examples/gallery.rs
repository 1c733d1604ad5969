//! Writes one of each figure kind into a directory, to eyeball the look:
//! `cargo run -p tmcc-plot --example gallery -- /tmp/gallery`.

use std::path::PathBuf;

use tmcc_plot::*;

fn main() -> Result<(), PlotError> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "gallery".into()));
    let steps: Vec<f64> = (1..=200).map(|s| f64::from(s) * 10.0).collect();
    let curve = |label: &str, k: f64, style| Series {
        label: label.into(),
        x: steps.clone(),
        y: steps.iter().map(|s| 0.4 + k * 4.0 / s.sqrt()).collect(),
        err: Some(steps.iter().map(|s| 0.5 / s.sqrt()).collect()),
        style,
    };
    let chart = |title: &str, log: bool| LineChart {
        title: title.into(),
        x_label: "training step".into(),
        y_label: "cross-entropy loss".into(),
        log_x: log,
        log_y: log,
        series: vec![
            curve("d_model = 64", 1.0, SeriesStyle::Line),
            curve("d_model = 128", 0.8, SeriesStyle::LinePoints),
            curve("teacher", 0.6, SeriesStyle::Dashed),
            curve("probe", 1.2, SeriesStyle::Points),
        ],
        hlines: vec![HLine {
            label: "naive loss ln(V)".into(),
            y: 2.2,
        }],
    };
    line_chart(&dir.join("line.png"), &chart("Loss vs step", false))?;
    line_chart(
        &dir.join("line-log.png"),
        &chart("Loss vs step (log-log)", true),
    )?;
    line_chart(&dir.join("line.svg"), &chart("Loss vs step", false))?;
    let panels: Vec<LineChart> = (0..4)
        .map(|i| chart(&format!("seed {i}"), i % 2 == 1))
        .collect();
    grid_of_line_charts(&dir.join("grid.png"), "Seeds", &panels, 2)?;

    let bar = |label: &str, value, err| Bar {
        label: label.into(),
        value,
        err,
    };
    let bars = BarChart {
        title: "Final eval loss".into(),
        y_label: "loss".into(),
        bars: vec![
            bar("baseline", 1.9, 0.08),
            bar("tmcc", 1.1, 0.05),
            bar("oracle", 0.7, 0.0),
        ],
        hlines: vec![HLine {
            label: "naive".into(),
            y: 2.2,
        }],
    };
    bar_chart(&dir.join("bars.png"), &bars)?;
    let sweep = BarChart {
        title: "Loss per configuration".into(),
        bars: (0..24)
            .map(|i| {
                bar(
                    &format!("lr=1e-{} wd={}", i % 4 + 2, i / 4),
                    1.0 + f64::from(i % 5) * 0.1,
                    0.05,
                )
            })
            .collect(),
        ..bars
    };
    bar_chart(&dir.join("bars-many.png"), &sweep)?;
    bar_chart(&dir.join("bars-many.svg"), &sweep)?;

    let matrix = |title: &str, n: usize, symmetric: bool| Heatmap {
        title: title.into(),
        x_label: "input unit".into(),
        y_label: "output unit".into(),
        rows: n,
        cols: n,
        values: (0..n * n)
            .map(|i| ((i / n) as f64 * 0.3).sin() * ((i % n) as f64 * 0.2).cos() * 2.5)
            .collect(),
        symmetric,
    };
    heatmap(&dir.join("heatmap.png"), &matrix("M", 24, true))?;
    heatmaps_side_by_side(
        &dir.join("pair.png"),
        "W_out·W_in vs M",
        &[matrix("W_out·W_in", 32, true), matrix("|M|", 32, false)],
    )?;
    println!("wrote figures to {}", dir.display());
    Ok(())
}
