//! Which toy models compute in superposition? Every candidate model of the lab's presets,
//! each at its own protocol (its preset's optimiser, schedule, batch, steps and evaluation
//! samples), trained at the plan's log-spaced feature probabilities with the plan's seeds
//! (all `n_p × n_seeds` instances side by side in one run, instance `i` with seed `i`),
//! and read by the two verdicts of [`verdict`]: *compressed computation* (below the naive
//! loss by more than the declared margin at some `p`) and *computation in superposition*
//! (that gain growing as `p` falls, and for a model with an embedding surviving the
//! transplant that removes the embedding's noise).
//!
//! The naive loss here is the issue's: `⌊H/κ⌋` features computed exactly, the best
//! constant for the rest (`Task::naive_constant_loss`); the training log's `loss/naive`
//! divides by the zero-output one (`Task::naive_loss`), which only differs by the
//! constants' `P²·E[t]²` terms.
//!
//! One claim per model (T1–T6): what the literature (or, where it says nothing, the lab's
//! declared hypothesis) expects of the two verdicts; the claim holds when both verdicts
//! are what it expects. The section's summary (a table of all verdicts and a figure of
//! loss/naive against p for all models) is its introduction in the report.

mod verdict;

use serde::Serialize;
use serde_json::json;
use tmcc_lab::runner::eval_model;
use tmcc_lab::stats::MarginReading;
use tmcc_lab::transplant::transplant;
use tmcc_model::eval::InstanceEval;
use tmcc_model::task::Task;
use tmcc_model::{presets, Config};
use tmcc_plot::{line_chart, HLine, LineChart, Series, SeriesStyle};

use crate::ctx::{ClaimResult, Ctx};
use crate::follow_up::fmt_p;
use crate::seed_claims::MARGIN_PERCENT;
use crate::table::{pm, table};
use crate::Error;
use verdict::{largest_gain, verdicts, Answer, PointGains, Verdicts};

/// Setting string of every claim of this section.
pub const SETTING: &str = "toy models";

/// The report's heading of this section.
pub const HEADING: &str = "Which toy models compute in superposition?";

/// What is expected of a model's two verdicts, and who says so.
struct Expected {
    compressed: Answer,
    superposition: Answer,
    source: &'static str,
}

/// A candidate: claim id, preset, what it is, what is expected.
struct Candidate {
    id: &'static str,
    preset: &'static str,
    what: &'static str,
    expected: Expected,
}

const CANDIDATES: [Candidate; 6] = [
    Candidate {
        id: "T1",
        preset: "apd-1layer",
        what: "the one-block TMCC (APD's 1-layer residual MLP, labels ReLU(x) + x)",
        expected: Expected {
            compressed: Answer::Yes,
            superposition: Answer::No,
            source: "APD (Braun et al. 2025) chose D = 1000 so that it beats naive; the \
                     follow-up paper finds the gain comes from the embedding's noise",
        },
    },
    Candidate {
        id: "T2",
        preset: "tmcc-abs",
        what: "the one-block TMCC with abs labels (the absolute value of c·x)",
        expected: Expected {
            compressed: Answer::Yes,
            superposition: Answer::No,
            source: "no published claim; the lab's hypothesis: as the TMCC (the same \
                     embedding noise, one ReLU per feature)",
        },
    },
    Candidate {
        id: "T3",
        preset: "follow-up-clean",
        what: "the follow-up paper's clean MLP (no embedding, no mixing, labels ReLU(x))",
        expected: Expected {
            compressed: Answer::No,
            superposition: Answer::No,
            source: "the follow-up paper: without the noise the model does not beat naive",
        },
    },
    Candidate {
        id: "T4",
        preset: "elhage-abs",
        what: "Elhage et al.'s absolute-value model (100 features, 40 neurons, importance 0.8^i)",
        expected: Expected {
            compressed: Answer::Yes,
            superposition: Answer::Yes,
            source: "Elhage et al. 2022: computation in superposition at sparse inputs",
        },
    },
    Candidate {
        id: "T5",
        preset: "apd-tms-5-2",
        what: "APD's toy model of superposition, 5 features in 2 dimensions",
        expected: Expected {
            compressed: Answer::Yes,
            superposition: Answer::Yes,
            source: "Elhage et al. 2022 (and APD's TMS targets): features in superposition \
                     once inputs are sparse",
        },
    },
    Candidate {
        id: "T6",
        preset: "apd-tms-40-10",
        what: "APD's toy model of superposition, 40 features in 10 dimensions",
        expected: Expected {
            compressed: Answer::Yes,
            superposition: Answer::Yes,
            source: "Elhage et al. 2022 (and APD's TMS targets): features in superposition \
                     once inputs are sparse",
        },
    },
];

/// Everything measured on one candidate.
#[derive(Clone, Debug, Serialize)]
struct Measured {
    preset: &'static str,
    /// Per instance: `p`, seed, the evaluation, the naive loss with the best constant, and
    /// the transplant's evaluation where the model has an embedding.
    instances: Vec<InstanceRow>,
    verdicts: Verdicts,
}

#[derive(Clone, Debug, Serialize)]
struct InstanceRow {
    p: f64,
    seed: u64,
    eval: InstanceEval,
    naive: f64,
    ratio: f64,
    ratio_se: f64,
    transplant_ratio: Option<f64>,
}

/// The candidate's own protocol at the plan's grid: `n_p·n_seeds` instances, p-major.
fn grid_config(ctx: &Ctx, preset: &Config) -> Config {
    let plan = &ctx.plan;
    let n = plan.toy_ps.len() * plan.toy_seeds;
    let steps = plan.toy_steps.unwrap_or(preset.steps);
    Config {
        instances: n,
        p_per_instance: plan
            .toy_ps
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p, plan.toy_seeds))
            .collect(),
        seed_per_instance: (0..n as u64).collect(),
        sigma_per_instance: Vec::new(),
        steps,
        batch_size: plan.toy_batch.unwrap_or(preset.batch_size),
        eval_samples: plan.toy_eval_samples.unwrap_or(preset.eval_samples),
        log_every: (steps / 10).max(1),
        ..preset.clone()
    }
}

/// Runs T1–T6 and returns their claims with the section's summary as its introduction.
pub fn run(ctx: &mut Ctx) -> Result<(Vec<ClaimResult>, String), Error> {
    let mut claims = Vec::new();
    let mut all: Vec<(&Candidate, Measured)> = Vec::new();
    for cand in &CANDIDATES {
        ctx.stage = format!("[toy models {}: {}]", cand.id, cand.preset);
        let t0 = ctx.elapsed();
        let cfg = grid_config(ctx, &presets::load(cand.preset)?);
        let run = ctx.train(cand.preset, &cfg, None)?;
        let moved = if cfg.variant.has_embedding() {
            let m = transplant(&run.model)?;
            Some(eval_model(&ctx.device, &m, cfg.eval_samples, None)?)
        } else {
            None
        };
        let m = measure(
            cand.preset,
            &cfg,
            &ctx.plan.toy_ps,
            &run.eval,
            moved.as_deref(),
        );
        claims.push(claim(cand, &cfg, &m, ctx.elapsed() - t0));
        all.push((cand, m));
    }
    let intro = summary(ctx, &all)?;
    Ok((claims, intro))
}

/// Gains and verdicts of one trained grid at its feature probabilities `ps` (and its
/// transplant's evaluation).
fn measure(
    preset: &'static str,
    cfg: &Config,
    ps: &[f64],
    eval: &[InstanceEval],
    moved: Option<&[InstanceEval]>,
) -> Measured {
    let task = Task::of(cfg);
    let hidden: usize = cfg.widths().iter().sum();
    let instances: Vec<InstanceRow> = eval
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let naive = task.naive_constant_loss(hidden, e.p);
            InstanceRow {
                p: e.p,
                seed: cfg.instance_seed(k),
                eval: e.clone(),
                naive,
                ratio: e.loss / naive,
                ratio_se: e.loss_se / naive,
                transplant_ratio: moved.map(|t| t[k].loss / naive),
            }
        })
        .collect();
    let gain = |r: f64| 100.0 * (1.0 - r);
    let points: Vec<PointGains> = ps
        .iter()
        .map(|&p| {
            let at: Vec<&InstanceRow> = instances.iter().filter(|r| r.p == p).collect();
            PointGains {
                p,
                gains: at.iter().map(|r| gain(r.ratio)).collect(),
                transplant_gains: moved.map(|_| {
                    at.iter()
                        .filter_map(|r| r.transplant_ratio.map(gain))
                        .collect()
                }),
            }
        })
        .collect();
    Measured {
        preset,
        verdicts: verdicts(&points, MARGIN_PERCENT),
        instances,
    }
}

fn claim(cand: &Candidate, cfg: &Config, m: &Measured, seconds: f64) -> ClaimResult {
    let v = &m.verdicts;
    let e = &cand.expected;
    let holds = v.compressed == e.compressed && v.superposition == e.superposition;
    let verdict = format!(
        "{}: compressed computation {} (expected {}), computation in superposition {} \
         (expected {}).",
        if holds { "Holds" } else { "Does not hold" },
        v.compressed.word(),
        e.compressed.word(),
        v.superposition.word(),
        e.superposition.word()
    );
    ClaimResult {
        id: cand.id.into(),
        title: format!("{}: {}", cand.preset, cand.what),
        setting: SETTING.into(),
        holds,
        verdict,
        seconds,
        numbers: json!({
            "preset": cand.preset,
            "steps": cfg.steps,
            "batch_size": cfg.batch_size,
            "eval_samples": cfg.eval_samples,
            "expected": { "compressed": e.compressed, "superposition": e.superposition,
                          "source": e.source },
            "measured": m,
        }),
        markdown: markdown(cand, cfg, m, seconds),
    }
}

/// An interval's reading against the margin, in words.
fn reading_words(r: MarginReading) -> &'static str {
    match r {
        MarginReading::Above => "above the margin",
        MarginReading::Below => "below the margin",
        MarginReading::Inconclusive => "inconclusive",
    }
}

/// The config file's spelling of an option.
fn serde_name(v: impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn protocol(cfg: &Config, seeds: usize) -> String {
    format!(
        "`{}`, {} features, widths {:?}; {} lr {} ({} schedule{}), batch {}, {} steps, \
         {} seeds per p; evaluation on {} samples per instance",
        cfg.variant.name(),
        cfg.n_feat,
        cfg.widths(),
        serde_name(cfg.optimizer),
        cfg.lr,
        serde_name(cfg.schedule),
        if cfg.weight_decay > 0.0 {
            format!(", weight decay {}", cfg.weight_decay)
        } else {
            String::new()
        },
        cfg.batch_size,
        cfg.steps,
        seeds,
        cfg.eval_samples
    )
}

fn markdown(cand: &Candidate, cfg: &Config, m: &Measured, seconds: f64) -> String {
    let v = &m.verdicts;
    let seeds = cfg.instances / v.points.len().max(1);
    let has_transplant = v.points.iter().any(|p| p.transplant.is_some());
    let mut header = vec![
        "p",
        "loss/naive ± SE (seeds)",
        "gain % (mean, Bonferroni interval)",
        "reading",
    ];
    if has_transplant {
        header.push("transplant gain % (interval)");
    }
    let rows: Vec<Vec<String>> = v
        .points
        .iter()
        .map(|pt| {
            let mut row = vec![
                fmt_p(pt.p),
                pm(1.0 - pt.mean / 100.0, pt.se / 100.0),
                format!(
                    "{:.1} [{:.1}, {:.1}]",
                    pt.mean, pt.interval.lo, pt.interval.hi
                ),
                reading_words(pt.reading).into(),
            ];
            if let Some((mean, ci)) = pt.transplant {
                row.push(format!("{mean:.1} [{:.1}, {:.1}]", ci.lo, ci.hi));
            }
            row
        })
        .collect();
    let trend = match v.slope_per_decade {
        Some((b, ci)) => format!(
            "gain {:+.2} points per decade of p [{:.2}, {:.2}] (so {:+.2} per decade as p \
             falls): its growth as p falls is {}",
            b,
            ci.lo,
            ci.hi,
            -b,
            reading_words(v.trend.expect("a slope has a reading"))
        ),
        None => "no trend (fewer than 3 points)".into(),
    };
    format!(
        "Protocol (preset `{}`'s own): {}. {:.0} s.\n\nExpected: compressed \
         computation {}, computation in superposition {} ({}).\n\n{}\nTrend: {trend}.{}\n\n\
         Compressed computation: **{}**; computation in superposition: **{}**.\n",
        cand.preset,
        protocol(cfg, seeds),
        seconds,
        cand.expected.compressed.word(),
        cand.expected.superposition.word(),
        cand.expected.source,
        table(&header, &rows),
        v.transplant.map_or(String::new(), |r| format!(
            " Transplant at the p of the largest gain: its gain is {}.",
            reading_words(r)
        )),
        v.compressed.word(),
        v.superposition.word()
    )
}

/// The section's introduction: its rules, a table of every model's verdicts, the figure.
fn summary(ctx: &Ctx, all: &[(&Candidate, Measured)]) -> Result<String, Error> {
    let mut series: Vec<Series> = all
        .iter()
        .map(|(cand, m)| Series {
            label: cand.preset.into(),
            x: m.verdicts.points.iter().map(|p| p.p).collect(),
            y: m.verdicts
                .points
                .iter()
                .map(|p| 1.0 - p.mean / 100.0)
                .collect(),
            err: Some(m.verdicts.points.iter().map(|p| p.se / 100.0).collect()),
            style: SeriesStyle::LinePoints,
        })
        .collect();
    // The transplants, dashed: the same weights without the embedding's noise.
    series.extend(all.iter().filter_map(|(cand, m)| {
        let pts = &m.verdicts.points;
        let moved: Option<Vec<f64>> = pts
            .iter()
            .map(|p| p.transplant.map(|(g, _)| 1.0 - g / 100.0))
            .collect();
        moved.map(|y| Series {
            label: format!("{} transplanted", cand.preset),
            x: pts.iter().map(|p| p.p).collect(),
            y,
            err: None,
            style: SeriesStyle::Dashed,
        })
    }));
    let (fig, link) = ctx.figure("t_loss_over_naive_across_p.png");
    line_chart(
        &fig,
        &LineChart {
            title:
                "every toy model at its own protocol (mean ± SE over seeds; dashed: transplanted)"
                    .into(),
            x_label: "feature probability p".into(),
            y_label: "loss / naive (best constant)".into(),
            log_x: true,
            log_y: true,
            series,
            hlines: vec![HLine {
                label: "naive".into(),
                y: 1.0,
            }],
        },
    )?;
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(cand, m)| {
            let best = largest_gain(&m.verdicts.points).expect("a grid has points");
            vec![
                cand.id.to_string(),
                format!("`{}`", cand.preset),
                format!("{:.1} at p = {}", best.mean, fmt_p(best.p)),
                m.verdicts
                    .slope_per_decade
                    .map_or("–".into(), |(b, _)| format!("{:+.2}", -b)),
                m.verdicts.compressed.word().into(),
                m.verdicts.superposition.word().into(),
            ]
        })
        .collect();
    let plan = &ctx.plan;
    Ok(format!(
        "Each model trains at its own preset's protocol at p ∈ {{{}}} with {} seeds per p, \
         and is read against its naive loss (`⌊H/κ⌋` features computed exactly, the best \
         constant for the rest; `crates/tmcc-model/src/task.rs`). The gain is \
         `100·(1 − loss/naive)` in % of naive, against the margin of {MARGIN_PERCENT} % \
         declared for the seed's claims. *Compressed computation*: the gain's interval \
         (Student t over seeds, Bonferroni over the p grid, family-wise 95 %) lies above \
         the margin at some p. *Computation in superposition*: compressed computation \
         whose gain grows as p falls (least-squares slope of the gain against log10 p, \
         95 % interval of the growth per decade above the margin) and, for a model with \
         an embedding, survives the transplant that removes the embedding's noise.\n\n{}\n\
         ![loss/naive against p for every model]({link})\n",
        plan.toy_ps
            .iter()
            .map(|&p| fmt_p(p))
            .collect::<Vec<_>>()
            .join(", "),
        plan.toy_seeds,
        table(
            &[
                "claim",
                "model",
                "largest gain %",
                "growth per decade as p falls",
                "compressed computation",
                "computation in superposition",
            ],
            &rows
        )
    ))
}
