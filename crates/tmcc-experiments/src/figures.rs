//! The standard figures of a model: input–output response and weight bars, built on
//! tmcc-plot. Shared by the reproduction and `tmcc plot`.

use std::path::Path;

use tmcc_model::eval::{response_grid, FeatureResponse};
use tmcc_model::Model;
use tmcc_plot::{grid_of_line_charts, HLine, LineChart, Series, SeriesStyle};

use crate::transplant::transplant;
use crate::Error;

/// One panel: every feature's `out_i − r·v` against `v`, with `ReLU(v)` for reference.
pub fn response_panel(title: &str, responses: &[FeatureResponse]) -> LineChart {
    let v = response_grid(responses.first().map_or(2, |r| r.resid.len()));
    let mut series: Vec<Series> = responses
        .iter()
        .map(|r| Series {
            label: String::new(),
            x: v.clone(),
            y: r.resid.clone(),
            err: None,
            style: SeriesStyle::Line,
        })
        .collect();
    series.push(Series {
        label: "ReLU(v)".into(),
        x: v.clone(),
        y: v.iter().map(|x| x.max(0.0)).collect(),
        err: None,
        style: SeriesStyle::Dashed,
    });
    LineChart {
        title: title.to_string(),
        x_label: "input v (x = v·e_i)".into(),
        y_label: "out_i − r·v".into(),
        log_x: false,
        log_y: false,
        series,
        hlines: Vec::new(),
    }
}

/// Per-feature read-in `‖(W1·W_E)[:, i]‖` and write-out `‖(W_Eᵀ·W2)[i, :]‖` of instance
/// `k`, features sorted by read-in (descending). Works with or without an embedding.
pub fn weight_norms(model: &Model<f32>, k: usize) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let feat = if model.embed.is_some() {
        transplant(model)?
    } else {
        model.clone()
    };
    let (f, h) = (feat.cfg.n_feat, feat.cfg.n_hidden);
    let w1 = feat.tensor(k, "W1").expect("W1");
    let w2: Vec<f32> = match feat.tensor(k, "W2") {
        Some(w2) => w2.to_vec(),
        None => (0..f * h).map(|i| w1[(i % h) * f + i / h]).collect(),
    };
    let mut pairs: Vec<(f64, f64)> = (0..f)
        .map(|i| {
            let read = (0..h).map(|j| (w1[j * f + i] as f64).powi(2)).sum::<f64>().sqrt();
            let write = (0..h).map(|j| (w2[i * h + j] as f64).powi(2)).sum::<f64>().sqrt();
            (read, write)
        })
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(pairs.into_iter().unzip())
}

/// A weight-bar panel of instance `k`.
pub fn weight_panel(title: &str, model: &Model<f32>, k: usize) -> Result<LineChart, Error> {
    let (read, write) = weight_norms(model, k)?;
    let x: Vec<f64> = (0..read.len()).map(|i| i as f64).collect();
    Ok(LineChart {
        title: title.to_string(),
        x_label: "feature (sorted by read-in norm)".into(),
        y_label: "norm across neurons".into(),
        log_x: false,
        log_y: false,
        series: vec![
            Series {
                label: "read-in ‖(W1·W_E)[:, i]‖".into(),
                x: x.clone(),
                y: read,
                err: None,
                style: SeriesStyle::Points,
            },
            Series {
                label: "write-out ‖(W_Eᵀ·W2)[i, :]‖".into(),
                x,
                y: write,
                err: None,
                style: SeriesStyle::Points,
            },
        ],
        hlines: Vec::<HLine>::new(),
    })
}

/// Panels side by side in one file.
pub fn panels(path: &Path, title: &str, panels: &[LineChart]) -> Result<(), Error> {
    grid_of_line_charts(path, title, panels, panels.len().min(3))?;
    Ok(())
}
