//! Claim 3's grid: how many features L1 training computes, against learning rate, initial
//! scale (including the seed's 3-D Xavier convention), batch size and steps, for one
//! setting (`emb_mlp`, r = 0 or `emb_res`, r = 1).
//!
//! One point changes one thing of the seed's setting (Adam, lr 5e-4, Xavier 2-D, batch
//! 1024); each trains `grid_seeds` seeds as instances of one run for `grid_steps` steps,
//! with the classification of every feature ([`Counts::of`]) and the neurons' activity
//! ([`neuron_activity`]) at six points along training: the steps axis. The seed's setting
//! itself is claim 3's main run (`l1_steps` steps), passed in.

use serde_json::json;
use tmcc_lab::folded::{neuron_activity, NeuronCounts};
use tmcc_lab::response::{response, Counts};
use tmcc_lab::stats::summarize;
use tmcc_model::config::Init;
use tmcc_model::{Config, Variant};
use tmcc_plot::{Bar, LineChart, Series, SeriesStyle};

use super::l1::RESPONSE_POINTS;
use crate::ctx::{reference_line, Ctx};
use crate::table::table;
use crate::Error;

/// Snapshots along each grid run.
const SNAPSHOTS: u64 = 6;

/// One grid point: what it changes, and how.
struct Point {
    label: &'static str,
    apply: fn(&mut Config),
}

const POINTS: [Point; 5] = [
    Point {
        label: "init Xavier 3-D (seed's)",
        apply: |c| c.init = Init::XavierNormalSeed3d,
    },
    Point {
        label: "init N(0, 0.1²)",
        apply: |c| {
            c.init = Init::Normal;
            c.init_std = 0.1;
        },
    },
    Point {
        label: "lr 3e-3",
        apply: |c| c.lr = 3e-3,
    },
    Point {
        label: "batch 256",
        apply: |c| c.batch_size = 256,
    },
    Point {
        label: "batch 4096",
        apply: |c| c.batch_size = 4096,
    },
];

/// What the grid of one setting gives the report.
pub struct Grid {
    pub markdown: String,
    pub numbers: serde_json::Value,
    /// Final computed features per point (mean ± SE over seeds), for the bar chart.
    pub bars: Vec<Bar>,
    /// Computed features along training, one series per point.
    pub panel: LineChart,
}

/// One row of the grid: final counts per seed and the mean along training.
struct Row {
    label: String,
    steps: u64,
    counts: Vec<Counts>,
    neurons: Vec<NeuronCounts>,
    along: Vec<(u64, f64)>,
}

fn mean_of<T>(v: &[T], f: impl Fn(&T) -> usize) -> f64 {
    v.iter().map(f).sum::<usize>() as f64 / v.len().max(1) as f64
}

/// Trains the grid of `variant` around the seed's L1 config `main_cfg`; `main` is the main
/// run's final counts and neurons, and its computed features along training.
pub fn run(
    ctx: &Ctx,
    variant: Variant,
    main_cfg: &Config,
    main: (&[Counts], &[NeuronCounts], Vec<(u64, f64)>),
) -> Result<Grid, Error> {
    let plan = &ctx.plan;
    let mut rows = vec![Row {
        label: "seed's setting (lr 5e-4, Xavier 2-D, batch 1024)".into(),
        steps: main_cfg.steps,
        counts: main.0.to_vec(),
        neurons: main.1.to_vec(),
        along: main.2,
    }];
    let every = (plan.grid_steps / SNAPSHOTS).max(1);
    for point in &POINTS {
        let mut cfg = Config {
            steps: plan.grid_steps,
            instances: plan.grid_seeds,
            log_every: every,
            ..main_cfg.clone()
        };
        (point.apply)(&mut cfg);
        let mut along = Vec::new();
        let mut last = (Vec::new(), Vec::new());
        let device = &ctx.device;
        let host = plan.host_eval_samples;
        let label = format!("{} L1, {}", variant.name(), point.label);
        ctx.train_observed(&label, &cfg, None, |p, t| {
            if p.step.is_multiple_of(every) || p.step == p.steps {
                let snap = t.snapshot()?;
                let counts: Vec<Counts> = response(device, &snap, RESPONSE_POINTS)?
                    .iter()
                    .map(|f| Counts::of(f))
                    .collect();
                along.push((p.step, mean_of(&counts, |c| c.computed)));
                if p.step == p.steps {
                    last = (counts, neuron_activity(&snap, host)?);
                }
            }
            Ok(())
        })?;
        rows.push(Row {
            label: point.label.into(),
            steps: cfg.steps,
            counts: last.0,
            neurons: last.1,
            along,
        });
    }
    let h = main_cfg.n_hidden;
    let reaching: Vec<&str> = rows
        .iter()
        .filter(|r| r.counts.iter().any(|c| c.computed == h))
        .map(|r| r.label.as_str())
        .collect();
    let best = rows
        .iter()
        .map(|r| r.counts.iter().map(|c| c.computed).max().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.label.clone(),
                r.steps.to_string(),
                r.counts
                    .iter()
                    .map(|c| c.computed.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{:.1}", mean_of(&r.counts, |c| c.partial)),
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    mean_of(&r.neurons, |n| n.alive),
                    mean_of(&r.neurons, |n| n.silent),
                    mean_of(&r.neurons, |n| n.dead)
                ),
                r.along
                    .iter()
                    .map(|(s, c)| format!("{s}: {c:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let alive_gap: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            r.counts
                .iter()
                .zip(&r.neurons)
                .map(|(c, n)| n.alive as f64 - c.computed as f64)
        })
        .collect();
    let gap = summarize(&alive_gap, 0.0);
    let markdown = format!(
        "**Grid** ({}: one change to the seed's setting per row, {} seeds per row, {} steps; \
         computed features per seed at the end, partial features and neurons alive / silent / \
         dead (mean over seeds) at the end, and the mean computed along training):\n\n{}\n\
         Rows where some seed computes all n_hidden = {h} features: {}. Most computed by any \
         seed: {best}. Over every seed of every row, alive neurons minus computed features: \
         {:.1} on average (range {:.0} to {:.0}).\n",
        variant.name(),
        plan.grid_seeds,
        plan.grid_steps,
        table(
            &[
                "grid point",
                "steps",
                "computed per seed",
                "partial",
                "neurons alive / silent / dead",
                "computed along training"
            ],
            &table_rows
        ),
        if reaching.is_empty() {
            "none".to_string()
        } else {
            reaching.join("; ")
        },
        gap.mean,
        gap.min,
        gap.max,
    );
    let bars = rows
        .iter()
        .map(|r| {
            let s = summarize(
                &r.counts
                    .iter()
                    .map(|c| c.computed as f64)
                    .collect::<Vec<_>>(),
                0.0,
            );
            Bar {
                label: format!("{}: {}", variant.name(), r.label),
                value: s.mean,
                err: s.se,
            }
        })
        .collect();
    let panel = LineChart {
        title: format!("{} (L1)", variant.name()),
        x_label: "training step".into(),
        y_label: "computed features".into(),
        log_x: false,
        log_y: false,
        series: rows
            .iter()
            .map(|r| Series {
                label: r.label.clone(),
                x: r.along.iter().map(|a| a.0 as f64).collect(),
                y: r.along.iter().map(|a| a.1).collect(),
                err: None,
                style: SeriesStyle::LinePoints,
            })
            .collect(),
        hlines: reference_line("n_hidden", h as f64),
    };
    let numbers = json!({
        "seeds": plan.grid_seeds,
        "rows": rows.iter().map(|r| json!({
            "point": r.label, "steps": r.steps, "computed": r.counts.iter().map(|c| c.computed).collect::<Vec<_>>(),
            "counts": r.counts, "neurons": r.neurons,
            "computed_along_training": r.along.iter().map(|(s, c)| json!({"step": s, "mean_computed": c})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "points_reaching_n_hidden": reaching,
        "most_computed": best,
        "alive_minus_computed": gap,
    });
    Ok(Grid {
        markdown,
        numbers,
        bars,
        panel,
    })
}
