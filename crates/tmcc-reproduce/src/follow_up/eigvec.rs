//! P3: eigenvector analysis. For trained `mix` models, the share of each neuron's input
//! direction (row of `W1`, in feature space) and output direction (column of `W2`) that
//! lies in the span of the eigenvectors of the symmetric part of the mixing matrix with
//! the top `H` eigenvalues, against `H/F` for random directions.
//!
//! **Sign.** The subspace is taken of `M_eff = −rσM` (the paper's `M`: the MLP's target is
//! `ReLU(x) + M_eff·x`); its top-`H` eigenvectors are the bottom-`H` of tmcc's `M`. Both are
//! reported ("paper's sign" and "opposite sign"). At σ = 0 the model never sees `M`; its
//! drawn `M` is used with the sign of σ → 0⁺ as a control (expected share `H/F`).
//!
//! Share of a direction `w`: `‖P·w‖²/‖w‖²` with `P` the projector on the subspace. Per model
//! (or per σ, pooled over seeds), the per-neuron shares are tested against `H/F` with a
//! one-sample one-sided t-test. Holds (the paper: learned directions concentrate in the
//! top-eigenvalue subspace) if the `W1` rows of the four mixing models of P1 at p = 0.01
//! (embedding-like in both signs, symmetric and asymmetric Gaussian) have a mean share above
//! `H/F` with p < 0.01.

use serde_json::json;
use tmcc_lab::eigen::{subspace_share, sym_eigen, symmetric_part, Eigen};
use tmcc_lab::stats::{summarize, Summary};
use tmcc_model::{Model, Param};
use tmcc_plot::{line_chart, LineChart, Series, SeriesStyle};

use super::sigma::Sweeps;
use super::sparsity::AcrossP;
use super::{fmt_pval as pval, mixing_f64, r_sigma, SETTING};
use crate::ctx::{reference_line, ClaimResult, Ctx};
use crate::table::table;
use crate::Error;

/// Per-neuron shares of one instance.
pub struct NeuronShares {
    pub w1_top: Vec<f64>,
    pub w1_opp: Vec<f64>,
    pub w2_top: Vec<f64>,
    pub w2_opp: Vec<f64>,
    /// Norm-weighted share of the `W1` rows in the top subspace: `Σ‖P·w‖²/Σ‖w‖²`.
    pub w1_weighted_top: f64,
    /// The eigendecomposition of `(M_eff + M_effᵀ)/2`.
    pub eigen: Eigen,
}

/// The weight `param` (`W1`: `H×F`, `W2`: `F×H`) of instance `k` of a `mix` model, in f64.
fn weights_f64(model: &Model<f32>, k: usize, param: Param) -> Vec<f64> {
    model
        .tensor(k, param)
        .expect("a mix model has W1 and W2")
        .iter()
        .map(|&v| v as f64)
        .collect()
}

/// The eigen-subspace analysis of instance `k` of a `mix` model.
pub fn neuron_shares(model: &Model<f32>, k: usize) -> NeuronShares {
    let (f, h) = (model.cfg.n_feat, model.cfg.n_hidden);
    let rs = r_sigma(model, k);
    // M_eff = −rσM; at σ = 0, the direction of σ → 0⁺.
    let scale = if rs != 0.0 { -rs } else { -1.0 };
    let m_eff: Vec<f64> = mixing_f64(model, k).iter().map(|v| scale * v).collect();
    let eigen = sym_eigen(&symmetric_part(&m_eff, f), f);
    let w1 = weights_f64(model, k, Param::W1);
    let w2 = weights_f64(model, k, Param::W2);
    let rows: Vec<Vec<f64>> = (0..h).map(|n| w1[n * f..(n + 1) * f].to_vec()).collect();
    let cols: Vec<Vec<f64>> = (0..h)
        .map(|n| (0..f).map(|i| w2[i * h + n]).collect())
        .collect();
    let share = |dirs: &[Vec<f64>], basis: &[f64]| -> Vec<f64> {
        dirs.iter().map(|d| subspace_share(d, basis)).collect()
    };
    let (top, opp) = (eigen.top(h), eigen.bottom(h));
    let norms: Vec<f64> = rows.iter().map(|r| r.iter().map(|x| x * x).sum()).collect();
    let w1_top = share(&rows, top);
    let total: f64 = norms.iter().sum();
    let w1_weighted_top = if total > 0.0 {
        w1_top.iter().zip(&norms).map(|(s, n)| s * n).sum::<f64>() / total
    } else {
        0.0
    };
    NeuronShares {
        w1_opp: share(&rows, opp),
        w2_top: share(&cols, top),
        w2_opp: share(&cols, opp),
        w1_top,
        w1_weighted_top,
        eigen,
    }
}

/// Pooled summaries of several instances' shares.
struct Pooled {
    w1_top: Summary,
    w1_opp: Summary,
    w2_top: Summary,
    w2_opp: Summary,
    w1_weighted_top: f64,
}

fn pool(all: &[NeuronShares], mu0: f64) -> Pooled {
    let cat = |get: &dyn Fn(&NeuronShares) -> &Vec<f64>| -> Vec<f64> {
        all.iter().flat_map(|s| get(s).iter().copied()).collect()
    };
    Pooled {
        w1_top: summarize(&cat(&|s| &s.w1_top), mu0),
        w1_opp: summarize(&cat(&|s| &s.w1_opp), mu0),
        w2_top: summarize(&cat(&|s| &s.w2_top), mu0),
        w2_opp: summarize(&cat(&|s| &s.w2_opp), mu0),
        w1_weighted_top: all.iter().map(|s| s.w1_weighted_top).sum::<f64>()
            / all.len().max(1) as f64,
    }
}

fn share_cell(s: &Summary) -> String {
    format!("{:.3} ± {:.3}", s.mean, s.se)
}

/// A row of the shares table: `model`, `setting`, then the pooled shares and p-values.
fn share_row(model: String, setting: String, p: &Pooled) -> Vec<String> {
    vec![
        model,
        setting,
        share_cell(&p.w1_top),
        pval(p.w1_top.p_above),
        format!("{:.3}", p.w1_weighted_top),
        share_cell(&p.w1_opp),
        share_cell(&p.w2_top),
        pval(p.w2_top.p_above),
        share_cell(&p.w2_opp),
    ]
}

pub fn run(ctx: &mut Ctx, across_p: &AcrossP, sweeps: &Sweeps) -> Result<ClaimResult, Error> {
    ctx.stage = "[follow-up P3/5: eigenvectors]".into();
    let t0 = ctx.elapsed();
    let first = &across_p.conditions[0];
    let (f, h) = (first.model.cfg.n_feat, first.model.cfg.n_hidden);
    let mu0 = h as f64 / f as f64;
    let mut rows = Vec::new();
    let mut numbers = serde_json::Map::new();
    let mut holds = true;
    let mut cumulative = Vec::new();
    let mut main_findings = Vec::new();
    for c in &across_p.conditions {
        let s = neuron_shares(&c.model, c.j01);
        let pooled = pool(std::slice::from_ref(&s), mu0);
        let is_main = c.sigma != 0.0;
        let ok = pooled.w1_top.p_above < 0.01;
        if is_main {
            holds &= ok;
            main_findings.push(format!("{} {:.3}", c.key, pooled.w1_top.mean));
        }
        rows.push(share_row(
            format!("P1 `{}` (p = 0.01)", c.key),
            c.label(),
            &pooled,
        ));
        numbers.insert(
            format!("p1_{}", c.key),
            json!({"w1_top": pooled.w1_top, "w1_opposite": pooled.w1_opp, "w2_top": pooled.w2_top,
                   "w2_opposite": pooled.w2_opp, "w1_weighted_top": pooled.w1_weighted_top,
                   "in_verdict": is_main, "concentrates": ok,
                   "eigenvalues_m_eff": s.eigen.values}),
        );
        // Cumulative share of the W1 rows (mean over neurons) in the span of the top-j
        // eigenvectors of M_eff, j = 1..F: a random direction gives j/F.
        let w1 = weights_f64(&c.model, c.j01, Param::W1);
        let mut cum = vec![0.0; f];
        for n in 0..h {
            let row = &w1[n * f..(n + 1) * f];
            let norm2: f64 = row.iter().map(|x| x * x).sum::<f64>();
            if norm2 == 0.0 {
                continue;
            }
            let mut acc = 0.0;
            for (j, c) in cum.iter_mut().enumerate() {
                let dot: f64 = s.eigen.vector(j).iter().zip(row).map(|(a, b)| a * b).sum();
                acc += dot * dot / norm2;
                *c += acc / h as f64;
            }
        }
        cumulative.push(Series {
            label: c.label(),
            x: (1..=f).map(|j| j as f64 / f as f64).collect(),
            y: cum,
            err: None,
            style: SeriesStyle::Line,
        });
    }
    let mut share_figs = Vec::new();
    for sw in &sweeps.sweeps {
        let mut pts = Vec::new();
        for (i, &sigma) in sw.sigmas.iter().enumerate() {
            let all: Vec<NeuronShares> = sw
                .instances_at(i)
                .map(|k| neuron_shares(&sw.model, k))
                .collect();
            let pooled = pool(&all, mu0);
            rows.push(share_row(
                format!("P2 {} σ = {sigma}", sw.name()),
                format!(
                    "{} seed(s) pooled{}",
                    sw.seeds,
                    if sigma == 0.0 { ", control" } else { "" }
                ),
                &pooled,
            ));
            pts.push((sigma, pooled));
        }
        numbers.insert(
            format!("p2_{}", sw.name()),
            json!(pts
                .iter()
                .map(
                    |(s, p)| json!({"sigma": s, "w1_top": p.w1_top, "w1_opposite": p.w1_opp,
                "w2_top": p.w2_top, "w2_opposite": p.w2_opp, "w1_weighted_top": p.w1_weighted_top})
                )
                .collect::<Vec<_>>()),
        );
        let x: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let mk = |label: &str, get: &dyn Fn(&Pooled) -> &Summary, style| Series {
            label: label.into(),
            x: x.clone(),
            y: pts.iter().map(|p| get(&p.1).mean).collect(),
            err: Some(pts.iter().map(|p| get(&p.1).se).collect()),
            style,
        };
        let chart = LineChart {
            title: format!(
                "Neuron directions in the top-H eigenvectors, {} Gaussian M, p = 0.01",
                sw.name()
            ),
            x_label: "σ".into(),
            y_label: "share in the top-H eigen-subspace".into(),
            log_x: false,
            log_y: false,
            series: vec![
                mk(
                    "W1 rows: top of M_eff",
                    &|p| &p.w1_top,
                    SeriesStyle::LinePoints,
                ),
                mk(
                    "W2 cols: top of M_eff",
                    &|p| &p.w2_top,
                    SeriesStyle::LinePoints,
                ),
                mk(
                    "W1 rows: top of M (opposite)",
                    &|p| &p.w1_opp,
                    SeriesStyle::Dashed,
                ),
            ],
            hlines: reference_line("random (H/F)", mu0),
        };
        let (path, link) = ctx.figure(&format!("p3_share_against_sigma_{}.png", sw.name()));
        line_chart(&path, &chart)?;
        share_figs.push(format!("![share against σ, {} M]({link})", sw.name()));
    }
    cumulative.push(Series {
        label: "random (j/F)".into(),
        x: vec![0.0, 1.0],
        y: vec![0.0, 1.0],
        err: None,
        style: SeriesStyle::Dashed,
    });
    let (map_path, map_link) = ctx.figure("p3_projections.png");
    line_chart(
        &map_path,
        &LineChart {
            title: "Share of the W1 rows in the top-j eigenvectors of M_eff (P1 models, p = 0.01)"
                .into(),
            x_label: "j / F (eigenvectors by descending eigenvalue of (M_eff + M_effᵀ)/2)".into(),
            y_label: "mean share of W1 rows".into(),
            log_x: false,
            log_y: false,
            series: cumulative,
            hlines: Vec::new(),
        },
    )?;
    let verdict = if holds {
        format!(
            "Holds: the W1 rows of every mixing model of P1 concentrate in the top-H eigenvectors of M_eff (mean share {}; random: {mu0}).",
            main_findings.join(", ")
        )
    } else {
        format!(
            "Does not hold for every mixing model of P1 (mean W1 share in the top-H subspace: {}; random: {mu0}; needs p < 0.01 above).",
            main_findings.join(", ")
        )
    };
    let markdown = format!(
        "Setup: the models of P1 trained at p = 0.01 and the σ sweeps of P2. For each, the \
         eigenvectors of (M_eff + M_effᵀ)/2 with M_eff = −rσM (the paper's M); *top* = the \
         span of the H = {h} with the largest eigenvalues (the paper's sign), *opposite* = the \
         top-H of tmcc's M (the bottom-H of M_eff). Share = ‖P·w‖²/‖w‖² per neuron \
         (mean ± SE over neurons; p: one-sided t-test of the mean against H/F = {mu0}); \
         *weighted* = Σ‖P·w‖²/Σ‖w‖² over the W1 rows. Random directions give H/F.\n\n{}\n\
         The projections: the mean share of the W1 rows in the span of the top-j eigenvectors \
         of M_eff, against j/F (a random direction gives the diagonal; the value at j/F = \
         H/F = {mu0} is the *top* share of the table):\n\n![projections]({map_link})\n\n\
         Against σ (P2 models; W1 rows and W2 columns in the top-H of M_eff, and W1 rows in \
         the top-H of tmcc's M, i.e. the opposite sign):\n\n{}\n",
        table(
            &[
                "model",
                "mixing",
                "W1 rows: top",
                "p",
                "W1 weighted",
                "W1 rows: opposite",
                "W2 cols: top",
                "p",
                "W2 cols: opposite"
            ],
            &rows
        ),
        share_figs.join("\n\n"),
    );
    numbers.insert("random_share".into(), json!(mu0));
    Ok(ClaimResult {
        id: "P3".into(),
        title:
            "Learned neuron directions concentrate in the top-H eigenvectors of the mixing matrix"
                .into(),
        setting: SETTING.into(),
        holds,
        verdict,
        seconds: ctx.elapsed() - t0,
        numbers: serde_json::Value::Object(numbers),
        markdown,
    })
}
