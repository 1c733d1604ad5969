//! The standard figures of a model, built on tmcc-plot and shared by the reproduction and
//! `tmcc plot`: input–output response panels (the response itself: [`crate::response`]),
//! per-feature read-in / write-out norms (`‖(W1·W_E)[:, i]‖`, `‖(W_Eᵀ·W2)[i, :]‖`),
//! training loss / naive against step, `W_out·W_in` (`F×F`) next to its mixing reference,
//! and loss/naive against a swept field.

use std::path::Path;

use tmcc_model::data::Labels;
use tmcc_model::eval::{response_grid, response_target, FeatureResponse};
use tmcc_model::task::Task;
use tmcc_model::{Model, Param};
use tmcc_plot::{grid_of_line_charts, HLine, LineChart, Series, SeriesStyle};

use crate::transplant::transplant;
use crate::Error;

/// The name of [`Task::target`] at coefficient `c`: `relu(v)`, `gelu(1.42·v)`,
/// `|v| − 1·v`, ….
fn target_label(task: &Task, c: f64) -> String {
    let cv = if c == 1.0 {
        "v".to_string()
    } else {
        format!("{c:.2}·v")
    };
    let minus_residual = if task.residual == 0.0 {
        String::new()
    } else {
        format!(" − {}·v", task.residual)
    };
    match task.labels {
        Labels::ActPlusResid => format!("{}({cv})", task.act.name()),
        Labels::Abs => format!("|{cv}|{minus_residual}"),
        Labels::Relu => format!("relu({cv}){minus_residual}"),
    }
}

/// One panel: every feature's `out_i − r·v` against `v`, with the target
/// ([`Task::target`]) of `task` for reference: one dashed curve when every shown feature has the same label
/// coefficient `c`, else two, at the smallest and the largest `c` shown.
pub fn response_panel(title: &str, task: &Task, responses: &[FeatureResponse]) -> LineChart {
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
    let by_coeff = |a: &usize, b: &usize| task.coeffs[*a].total_cmp(&task.coeffs[*b]);
    let features = || responses.iter().map(|r| r.feature);
    let mut shown: Vec<usize> = features()
        .min_by(by_coeff)
        .into_iter()
        .chain(features().max_by(by_coeff))
        .collect();
    shown.dedup_by_key(|f| task.coeffs[*f].to_bits());
    for f in shown {
        series.push(Series {
            label: target_label(task, task.coeffs[f]),
            x: v.clone(),
            y: response_target(task, f, &v),
            err: None,
            style: SeriesStyle::Dashed,
        });
    }
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

/// The weights of instance `k` in feature space, `(F, H, W_in, W_out)`: `W_in = W1·W_E`
/// (`H×F`) and `W_out = W_Eᵀ·W2` (`F×H`) with an embedding (the transplant), `W1` and `W2`
/// without; `W_out = W_inᵀ` when tied.
fn feature_weights(
    model: &Model<f32>,
    k: usize,
) -> Result<(usize, usize, Vec<f32>, Vec<f32>), Error> {
    let feat = if model.embed.is_some() {
        transplant(model)?
    } else {
        model.clone()
    };
    let (f, h) = (feat.cfg.n_feat, feat.cfg.n_hidden);
    let w1 = feat.tensor(k, Param::W1).expect("W1").to_vec();
    let w2: Vec<f32> = match feat.tensor(k, Param::W2) {
        Some(w2) => w2.to_vec(),
        None => (0..f * h).map(|i| w1[(i % h) * f + i / h]).collect(),
    };
    Ok((f, h, w1, w2))
}

/// Per-feature read-in `‖(W1·W_E)[:, i]‖` and write-out `‖(W_Eᵀ·W2)[i, :]‖` of instance
/// `k`, features sorted by read-in (descending). Works with or without an embedding.
pub fn weight_norms(model: &Model<f32>, k: usize) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let (f, h, w1, w2) = feature_weights(model, k)?;
    let mut pairs: Vec<(f64, f64)> = (0..f)
        .map(|i| {
            let read = (0..h)
                .map(|j| (w1[j * f + i] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let write = (0..h)
                .map(|j| (w2[i * h + j] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
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

// ---------------------------------------------------------------------------------------
// Figures of `tmcc plot`: loss curves, W_out·W_in against the mixing term, sweep charts.

/// Training-batch loss divided by the naive loss at each instance's `p`, against step,
/// one series per instance (labelled up to 10), with the naive level at 1.
pub fn loss_curve_chart(
    title: &str,
    cfg: &tmcc_model::Config,
    log: &[tmcc_model::train::LogPoint],
) -> LineChart {
    let k = log.first().map_or(0, |l| l.loss.len());
    let x: Vec<f64> = log.iter().map(|l| l.step as f64).collect();
    let series = (0..k)
        .map(|i| {
            let naive = cfg.naive_loss(cfg.instance_p(i));
            Series {
                label: if k <= 10 {
                    format!(
                        "instance {i} (seed {}, p {})",
                        cfg.instance_seed(i),
                        cfg.instance_p(i)
                    )
                } else {
                    String::new()
                },
                x: x.clone(),
                y: log.iter().map(|l| l.loss[i] / naive).collect(),
                err: None,
                style: SeriesStyle::Line,
            }
        })
        .collect();
    LineChart {
        title: title.to_string(),
        x_label: "training step".into(),
        y_label: "training loss / naive".into(),
        log_x: false,
        log_y: true,
        series,
        hlines: vec![HLine {
            label: "naive".into(),
            y: 1.0,
        }],
    }
}

/// `W_out·W_in` of instance `k` in feature space (`F×F`, row = output feature):
/// `(W_Eᵀ·W2)·(W1·W_E)` with an embedding, `W2·W1` without (`W1ᵀ` for `W2` when tied).
pub fn feature_product(model: &Model<f32>, k: usize) -> Result<Vec<f64>, Error> {
    let (f, h, w1, w2) = feature_weights(model, k)?;
    let mut out = vec![0.0; f * f];
    for a in 0..f {
        for j in 0..h {
            let c = w2[a * h + j] as f64;
            for b in 0..f {
                out[a * f + b] += c * w1[j * f + b] as f64;
            }
        }
    }
    Ok(out)
}

/// What `W_out·W_in` is compared with (`F×F`, row = output feature), and its name:
/// `σ_k·M` for `mix` (the residual is `r·(I + σM)x`, so the MLP's target is
/// `ReLU(x) − r·σ·M·x`), `N = W_EᵀW_E − I` with an embedding (target `ReLU(x) − r·N·x` for
/// the residual variants); `None` otherwise.
pub fn mixing_reference(model: &Model<f32>, k: usize) -> Option<(String, Vec<f64>)> {
    let f = model.cfg.n_feat;
    if let Some(m) = model.instance_mixing(k) {
        let s = model.sigma(k);
        return Some((
            format!("σ·M (σ = {s}; MLP target ReLU(x) − r·σ·M·x)"),
            m.iter().map(|v| s * *v as f64).collect(),
        ));
    }
    let e = model.instance_embed(k)?;
    let d = model.cfg.d_emb;
    let mut n = vec![0.0; f * f];
    for j in 0..d {
        for a in 0..f {
            let ea = e[j * f + a] as f64;
            for b in 0..f {
                n[a * f + b] += ea * e[j * f + b] as f64;
            }
        }
    }
    for a in 0..f {
        n[a * f + a] -= 1.0;
    }
    Some(("N = W_EᵀW_E − I (MLP target ReLU(x) − r·N·x)".into(), n))
}

/// Heatmaps of instance `k`: `W_out·W_in` and, when there is one, its mixing reference.
pub fn product_heatmaps(model: &Model<f32>, k: usize) -> Result<Vec<tmcc_plot::Heatmap>, Error> {
    let f = model.cfg.n_feat;
    let map = |title: String, values: Vec<f64>| tmcc_plot::Heatmap {
        title,
        x_label: "input feature".into(),
        y_label: "output feature".into(),
        rows: f,
        cols: f,
        values,
        symmetric: true,
    };
    let mut maps = vec![map(
        format!("W_out·W_in (instance {k}, feature space)"),
        feature_product(model, k)?,
    )];
    if let Some((name, values)) = mixing_reference(model, k) {
        maps.push(map(name, values));
    }
    Ok(maps)
}

/// A sweep figure: a line chart for a numeric x, bars for a categorical one.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepChart {
    Line(LineChart),
    Bar(tmcc_plot::BarChart),
}

impl SweepChart {
    pub fn draw(&self, path: &Path) -> Result<(), Error> {
        match self {
            SweepChart::Line(c) => tmcc_plot::line_chart(path, c)?,
            SweepChart::Bar(c) => tmcc_plot::bar_chart(path, c)?,
        }
        Ok(())
    }
}

/// The default x of a sweep figure: `p`, `sigma`, `d_emb`, `n_hidden`, else the first
/// other swept field (`seed` last).
pub fn default_sweep_x(results: &crate::sweep::Results) -> Option<String> {
    let fields = results.axis_fields();
    ["p", "sigma", "d_emb", "n_hidden"]
        .iter()
        .find(|f| fields.contains(f))
        .map(|f| f.to_string())
        .or_else(|| fields.iter().find(|f| **f != "seed").map(|f| f.to_string()))
        .or_else(|| fields.first().map(|f| f.to_string()))
}

/// loss/naive against the swept field `x`: one series per combination of the other swept
/// fields except `seed`; over seeds the mean with its standard error as error bar, for a
/// single run the standard error of its evaluation.
pub fn sweep_chart(results: &crate::sweep::Results, x: &str) -> Result<SweepChart, Error> {
    use serde_json::Value;
    let fields = results.axis_fields();
    if !fields.contains(&x) {
        return Err(Error::Other(format!(
            "--x `{x}` is not a swept field of this sweep; swept: {}",
            fields.join(", ")
        )));
    }
    let others: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| *f != x && *f != "seed")
        .collect();
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    // (series label, [(x value, [(ratio, se)])]) in first-appearance order.
    type Points = Vec<(Value, Vec<(f64, f64)>)>;
    let mut series: Vec<(String, Points)> = Vec::new();
    for row in &results.rows {
        let label = others
            .iter()
            .map(|f| format!("{f} = {}", text(row.get(*f))))
            .collect::<Vec<_>>()
            .join(", ");
        let xv = row.get(x).cloned().unwrap_or(Value::Null);
        let ratio = row
            .get("loss_over_naive")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        let se = row
            .get("loss_over_naive_se")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        let idx = match series.iter().position(|(l, _)| *l == label) {
            Some(i) => i,
            None => {
                series.push((label, Vec::new()));
                series.len() - 1
            }
        };
        let points = &mut series[idx].1;
        match points.iter_mut().find(|(v, _)| *v == xv) {
            Some((_, vals)) => vals.push((ratio, se)),
            None => points.push((xv, vec![(ratio, se)])),
        }
    }
    let stat = |vals: &[(f64, f64)]| {
        if vals.len() >= 2 {
            let s = crate::stats::summarize(&vals.iter().map(|v| v.0).collect::<Vec<_>>(), 1.0);
            (s.mean, s.se)
        } else {
            vals[0]
        }
    };
    let seeds = results.rows.len() / series.iter().map(|s| s.1.len()).sum::<usize>().max(1);
    let err_note = if seeds >= 2 {
        format!("mean ± SE over {seeds} seeds")
    } else {
        "± SE of the evaluation".into()
    };
    let numeric = results
        .rows
        .iter()
        .all(|r| r.get(x).is_some_and(Value::is_number));
    let title = format!("loss / naive against {x} ({err_note})");
    if numeric {
        let xs: Vec<f64> = results
            .rows
            .iter()
            .filter_map(|r| r.get(x).and_then(Value::as_f64))
            .collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_x = lo > 0.0 && hi / lo >= 20.0;
        let series = series
            .into_iter()
            .map(|(label, mut points)| {
                points.sort_by(|a, b| {
                    a.0.as_f64()
                        .unwrap_or(0.0)
                        .total_cmp(&b.0.as_f64().unwrap_or(0.0))
                });
                let st: Vec<(f64, f64)> = points.iter().map(|(_, v)| stat(v)).collect();
                Series {
                    label,
                    x: points
                        .iter()
                        .map(|(v, _)| v.as_f64().unwrap_or(f64::NAN))
                        .collect(),
                    y: st.iter().map(|s| s.0).collect(),
                    err: Some(st.iter().map(|s| s.1).collect()),
                    style: SeriesStyle::LinePoints,
                }
            })
            .collect();
        Ok(SweepChart::Line(LineChart {
            title,
            x_label: x.to_string(),
            y_label: "loss / naive".into(),
            log_x,
            log_y: false,
            series,
            hlines: vec![HLine {
                label: "naive".into(),
                y: 1.0,
            }],
        }))
    } else {
        let bars = series
            .iter()
            .flat_map(|(label, points)| {
                points.iter().map(move |(v, vals)| {
                    let (value, err) = stat(vals);
                    let name = if label.is_empty() {
                        text(Some(v))
                    } else {
                        format!("{} | {label}", text(Some(v)))
                    };
                    tmcc_plot::Bar {
                        label: name,
                        value,
                        err,
                    }
                })
            })
            .collect();
        Ok(SweepChart::Bar(tmcc_plot::BarChart {
            title,
            y_label: "loss / naive".into(),
            bars,
            hlines: vec![HLine {
                label: "naive".into(),
                y: 1.0,
            }],
        }))
    }
}

#[cfg(test)]
mod tests {
    use tmcc_model::act::Act;
    use tmcc_model::config::LabelCoeffs;
    use tmcc_model::eval::FeatureClass;
    use tmcc_model::Config;

    use super::*;

    fn flat(feature: usize) -> FeatureResponse {
        FeatureResponse {
            feature,
            resid: vec![0.0; 5],
            err_computed: 1.0,
            err_zero: 0.0,
            class: FeatureClass::Zero,
        }
    }

    /// The dashed references are the task's own targets: `act(v)` once when every
    /// coefficient is 1, `act(c·v)` at the smallest and largest shown `c` otherwise.
    #[test]
    fn the_response_panel_draws_the_tasks_targets() {
        let dashed = |chart: &LineChart| -> Vec<(String, Vec<f64>)> {
            chart
                .series
                .iter()
                .filter(|s| matches!(s.style, SeriesStyle::Dashed))
                .map(|s| (s.label.clone(), s.y.clone()))
                .collect()
        };
        let responses: Vec<FeatureResponse> = (0..4).map(flat).collect();
        let trivial = Config::default().task();
        let refs = dashed(&response_panel("t", &trivial, &responses));
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].0, "relu(v)");
        assert_eq!(refs[0].1, vec![0.0, 0.0, 0.0, 0.5, 1.0]);

        let cfg = Config {
            act: Act::Gelu,
            label_coeffs: LabelCoeffs::Uniform,
            ..Config::default()
        };
        let task = cfg.task();
        let refs = dashed(&response_panel("t", &task, &responses));
        let c: Vec<f64> = (0..4).map(|f| task.coeffs[f]).collect();
        let (lo, hi) = (
            c.iter().cloned().fold(f64::INFINITY, f64::min),
            c.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        assert_eq!(refs.len(), 2, "{refs:?}");
        assert_eq!(refs[0].0, format!("gelu({lo:.2}·v)"));
        assert_eq!(refs[1].0, format!("gelu({hi:.2}·v)"));
        assert_eq!(refs[1].1[4], Act::Gelu.apply(hi));

        let abs = Config {
            labels: Labels::Abs,
            ..Config::default()
        }
        .task();
        let refs = dashed(&response_panel("t", &abs, &responses));
        assert_eq!(refs.len(), 1);
        assert_eq!(
            refs[0].1,
            (0..5)
                .map(|j| abs.target(0, -1.0 + 0.5 * j as f64))
                .collect::<Vec<_>>()
        );
        assert!(refs[0].0.starts_with("|v|"), "{}", refs[0].0);
    }
}
