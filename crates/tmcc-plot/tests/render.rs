//! End-to-end tests: every public function writes a valid file, and every
//! failure leaves neither the file nor its `.tmp` sibling behind.

use std::fs;
use std::path::{Path, PathBuf};

use tmcc_plot::*;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A fresh, empty directory unique to this test process and `name`.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tmcc-plot-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn assert_png(path: &Path) {
    let bytes = fs::read(path).unwrap();
    assert!(
        bytes.starts_with(PNG_SIGNATURE),
        "{} is not a PNG",
        path.display()
    );
    assert!(!tmp_of(path).exists());
}

fn assert_svg(path: &Path) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.trim_start().starts_with("<svg"),
        "{} is not an SVG",
        path.display()
    );
    assert!(!tmp_of(path).exists());
}

fn assert_nothing_written(path: &Path) {
    assert!(!path.exists(), "{} exists", path.display());
    assert!(!tmp_of(path).exists(), "{} has a .tmp", path.display());
}

fn series(label: &str, style: SeriesStyle, scale: f64) -> Series {
    let x: Vec<f64> = (1..=20).map(f64::from).collect();
    let y = x.iter().map(|x| scale * 3.0 / x + 0.1).collect();
    let err = Some(x.iter().map(|x| 0.2 / x).collect());
    Series {
        label: label.into(),
        x,
        y,
        err,
        style,
    }
}

fn loss_chart(log: bool) -> LineChart {
    LineChart {
        title: "Training loss".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_x: log,
        log_y: log,
        series: vec![
            series("train", SeriesStyle::Line, 1.0),
            series("eval", SeriesStyle::LinePoints, 1.3),
            series("baseline", SeriesStyle::Dashed, 0.7),
            series("probe", SeriesStyle::Points, 0.5),
        ],
        hlines: vec![HLine {
            label: "naive loss".into(),
            y: 2.5,
        }],
    }
}

fn heat(title: &str, rows: usize, cols: usize, symmetric: bool) -> Heatmap {
    let values = (0..rows * cols).map(|i| (i as f64 * 0.37).sin()).collect();
    Heatmap {
        title: title.into(),
        x_label: "in".into(),
        y_label: "out".into(),
        rows,
        cols,
        values,
        symmetric,
    }
}

fn bars() -> BarChart {
    let bar = |label: &str, value, err| Bar {
        label: label.into(),
        value,
        err,
    };
    BarChart {
        title: "Final loss by model".into(),
        y_label: "loss".into(),
        bars: vec![
            bar("tiny", 1.8, 0.1),
            bar("small", 1.2, 0.05),
            bar("base", 0.9, 0.0),
        ],
        hlines: vec![HLine {
            label: "naive".into(),
            y: 2.0,
        }],
    }
}

#[test]
fn line_chart_writes_png_and_svg() {
    let dir = temp_dir("line");
    for log in [false, true] {
        let png = dir.join(format!("loss-{log}.png"));
        line_chart(&png, &loss_chart(log)).unwrap();
        assert_png(&png);
    }
    let svg = dir.join("loss.svg");
    line_chart(&svg, &loss_chart(false)).unwrap();
    assert_svg(&svg);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn line_chart_skips_non_finite_and_non_positive_log_points() {
    let dir = temp_dir("skip");
    let mut chart = loss_chart(true);
    chart.series[0].y[3] = f64::NAN;
    chart.series[0].y[4] = -1.0;
    chart.series[1].x[0] = 0.0;
    chart.series[2].y[5] = f64::INFINITY;
    chart.hlines.push(HLine {
        label: "zero".into(),
        y: 0.0,
    });
    let path = dir.join("skip.png");
    line_chart(&path, &chart).unwrap();
    assert_png(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bar_chart_writes_png() {
    let dir = temp_dir("bar");
    let path = dir.join("bars.png");
    bar_chart(&path, &bars()).unwrap();
    assert_png(&path);
    let mut many = bars();
    many.bars = (0..30)
        .map(|i| Bar {
            label: format!("configuration-{i}"),
            value: i as f64 - 5.0,
            err: 0.5,
        })
        .collect();
    many.bars[3].value = f64::NAN;
    let path = dir.join("many.svg");
    bar_chart(&path, &many).unwrap();
    assert_svg(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn grid_writes_png() {
    let dir = temp_dir("grid");
    let path = dir.join("grid.png");
    let panels = vec![loss_chart(false), loss_chart(true), loss_chart(false)];
    grid_of_line_charts(&path, "Sweep", &panels, 2).unwrap();
    assert_png(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn heatmaps_write_png_and_svg() {
    let dir = temp_dir("heat");
    let path = dir.join("m.png");
    heatmap(&path, &heat("M", 12, 16, true)).unwrap();
    assert_png(&path);
    let path = dir.join("m.svg");
    heatmap(&path, &heat("M", 3, 3, false)).unwrap();
    assert_svg(&path);
    let path = dir.join("pair.png");
    let mut with_nan = heat("W_out·W_in", 16, 16, true);
    with_nan.values[5] = f64::NAN;
    heatmaps_side_by_side(
        &path,
        "Learned vs target",
        &[with_nan, heat("M", 16, 16, false)],
    )
    .unwrap();
    assert_png(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn empty_series_is_an_error_naming_the_figure() {
    let dir = temp_dir("empty");
    let path = dir.join("empty.png");
    let mut chart = loss_chart(false);
    chart.series[1].x.clear();
    chart.series[1].y.clear();
    chart.series[1].err = None;
    let err = line_chart(&path, &chart).unwrap_err();
    assert!(matches!(err, PlotError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("Training loss"), "{err}");
    assert_nothing_written(&path);

    chart.series.clear();
    assert!(matches!(
        line_chart(&path, &chart),
        Err(PlotError::Empty { .. })
    ));
    let no_bars = BarChart {
        title: "B".into(),
        ..BarChart::default()
    };
    assert!(matches!(
        bar_chart(&path, &no_bars),
        Err(PlotError::Empty { .. })
    ));
    let no_cells = Heatmap {
        title: "H".into(),
        ..Heatmap::default()
    };
    assert!(matches!(
        heatmap(&path, &no_cells),
        Err(PlotError::Empty { .. })
    ));
    assert!(matches!(
        grid_of_line_charts(&path, "G", &[], 2),
        Err(PlotError::Empty { .. })
    ));
    assert!(matches!(
        heatmaps_side_by_side(&path, "S", &[]),
        Err(PlotError::Empty { .. })
    ));
    assert_nothing_written(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_data_is_an_error_and_writes_nothing() {
    let dir = temp_dir("bad");
    let path = dir.join("bad.png");
    let invalid = |r: Result<(), PlotError>| matches!(r, Err(PlotError::InvalidData { .. }));

    let mut nan = loss_chart(false);
    nan.series.iter_mut().for_each(|s| s.y.fill(f64::NAN));
    assert!(invalid(line_chart(&path, &nan)));

    let mut neg = loss_chart(true);
    neg.series.iter_mut().for_each(|s| s.y.fill(-1.0));
    assert!(invalid(line_chart(&path, &neg)));

    let mut ragged = loss_chart(false);
    ragged.series[0].y.pop();
    assert!(invalid(line_chart(&path, &ragged)));
    let mut bad_err = loss_chart(false);
    bad_err.series[0].err = Some(vec![1.0]);
    assert!(invalid(line_chart(&path, &bad_err)));

    let mut wrong_size = heat("H", 4, 4, false);
    wrong_size.values.pop();
    assert!(invalid(heatmap(&path, &wrong_size)));
    let mut all_nan = heat("H", 2, 2, true);
    all_nan.values.fill(f64::NAN);
    assert!(invalid(heatmap(&path, &all_nan)));

    let mut nan_bars = bars();
    nan_bars
        .bars
        .iter_mut()
        .for_each(|b| b.value = f64::INFINITY);
    assert!(invalid(bar_chart(&path, &nan_bars)));

    // One bad panel fails the whole grid.
    assert!(invalid(grid_of_line_charts(
        &path,
        "G",
        &[loss_chart(false), nan],
        2
    )));
    assert!(invalid(grid_of_line_charts(
        &path,
        "G",
        &[loss_chart(false)],
        0
    )));
    assert_nothing_written(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn failed_write_leaves_no_tmp_and_stale_tmp_is_replaced() {
    let dir = temp_dir("io");
    let blocker = dir.join("not-a-dir");
    fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("plot.png");
    let err = line_chart(&path, &loss_chart(false)).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");

    // A target that is a directory: the rename fails, the .tmp is cleaned up.
    let path = dir.join("is-a-dir.png");
    fs::create_dir(&path).unwrap();
    let err = bar_chart(&path, &bars()).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
    assert!(!tmp_of(&path).exists());

    let path = dir.join("nested/deeper/plot.png");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(tmp_of(&path), b"stale").unwrap();
    line_chart(&path, &loss_chart(false)).unwrap();
    assert_png(&path);
    fs::remove_dir_all(dir).unwrap();
}
