//! Claim 3: trained on L1 instead of L2, the model computes exactly `n_hidden` features
//! (response `out_i − r·v ≈ ReLU(v)`) and outputs 0 beyond the residual for the rest.
//!
//! Two settings: the seed notebook's (`emb_mlp`, r = 0; claim "3") and APD's (`emb_res`,
//! r = 1; claim "3b"). The count of computed / zero / partial features (classification in
//! `tmcc_model::eval`, threshold 0.2 on relative RMS errors) is followed during training.
//! Holds for a setting if every seed ends with exactly `n_hidden` computed features and no
//! partial ones.
//!
//! Is it the optimum or the optimiser? Beside the trained models: the naive solution built
//! explicitly ([`naive_solution`]: `n_hidden` features computed exactly, the rest zero),
//! its L1 loss/naive and classification; the neurons' activity on the evaluation stream
//! ([`neuron_activity`]: dead, silent, alive) along training; and the grid of
//! `l1_grid.rs` (learning rate, initial scale, batch size, steps).

use serde_json::json;
use tmcc_lab::figures::{panels, response_panel, weight_panel};
use tmcc_lab::folded::{neuron_activity, NeuronCounts, SILENT_OUTPUT};
use tmcc_lab::ideal::naive_solution;
use tmcc_lab::response::{response, Counts};
use tmcc_lab::runner::eval_model;
use tmcc_model::config::LossName;
use tmcc_model::eval::RESPONSE_TOLERANCE;
use tmcc_model::{Config, Variant};
use tmcc_plot::{bar_chart, line_chart, BarChart, LineChart, Series, SeriesStyle};

use super::variants::VariantRuns;
use crate::ctx::{reference_line, ClaimResult, Ctx};
use crate::table::table;
use crate::Error;

/// Grid points of the response sweep.
pub const RESPONSE_POINTS: usize = 41;

struct Setting {
    id: &'static str,
    variant: Variant,
    name: &'static str,
}

const SETTINGS: [Setting; 2] = [
    Setting {
        id: "3",
        variant: Variant::EmbMlp,
        name: "seed notebook: emb_mlp, r = 0",
    },
    Setting {
        id: "3b",
        variant: Variant::EmbRes,
        name: "APD: emb_res, r = 1",
    },
];

pub fn run(ctx: &mut Ctx, l2: &VariantRuns) -> Result<Vec<ClaimResult>, Error> {
    ctx.stage = "[claim 3/4: L1 loss]".into();
    let plan = ctx.plan.clone();
    let mut results = Vec::new();
    let mut resp_panels = Vec::new();
    let mut weight_panels = Vec::new();
    let mut count_series = Vec::new();
    let mut neuron_series = Vec::new();
    let mut grid_bars = Vec::new();
    let mut grid_panels = Vec::new();
    for s in &SETTINGS {
        let t0 = ctx.elapsed();
        let every = (plan.l1_steps / plan.l1_snapshots).max(1);
        let cfg = Config {
            loss: LossName::L1,
            steps: plan.l1_steps,
            log_every: every,
            ..plan.base(s.variant)
        };
        let mut during: Vec<(u64, Vec<Counts>)> = Vec::new();
        let mut neurons_during: Vec<Vec<NeuronCounts>> = Vec::new();
        let device = &ctx.device;
        let host = plan.host_eval_samples;
        let l1 = ctx.train_observed(&format!("{} L1", s.variant.name()), &cfg, None, |p, t| {
            if p.step.is_multiple_of(every) || p.step == p.steps {
                let snap = t.snapshot()?;
                let r = response(device, &snap, RESPONSE_POINTS)?;
                during.push((p.step, r.iter().map(|f| Counts::of(f)).collect()));
                neurons_during.push(neuron_activity(&snap, host)?);
            }
            Ok(())
        })?;
        let ideal = naive_solution(&cfg)?;
        let ideal_eval = eval_model(&ctx.device, &ideal, cfg.eval_samples, None)?;
        let ideal_counts: Vec<Counts> = response(&ctx.device, &ideal, RESPONSE_POINTS)?
            .iter()
            .map(|f| Counts::of(f))
            .collect();
        let l1_neurons = neurons_during.last().cloned().unwrap_or_default();
        let l1_resp = response(&ctx.device, &l1.model, RESPONSE_POINTS)?;
        let l2_run = l2.get(s.variant);
        let l2_resp = response(&ctx.device, &l2_run.model, RESPONSE_POINTS)?;
        let l1_counts: Vec<Counts> = l1_resp.iter().map(|f| Counts::of(f)).collect();
        let l2_counts: Vec<Counts> = l2_resp.iter().map(|f| Counts::of(f)).collect();
        let h = cfg.n_hidden;
        let holds = l1_counts.iter().all(|c| c.computed == h && c.partial == 0);
        let rows: Vec<Vec<String>> = (0..cfg.instances)
            .map(|k| {
                let (a, b) = (l1_counts[k], l2_counts[k]);
                let n = l1_neurons.get(k).copied().unwrap_or_default();
                vec![
                    format!("{}", cfg.instance_seed(k)),
                    format!("{} / {} / {}", a.computed, a.zero, a.partial),
                    format!("{:.4}", l1.eval[k].ratio),
                    format!("{} / {} / {}", n.alive, n.silent, n.dead),
                    format!(
                        "{:.4} ± {:.4} ({} computed)",
                        ideal_eval[k].ratio, ideal_eval[k].ratio_se, ideal_counts[k].computed
                    ),
                    format!("{} / {} / {}", b.computed, b.zero, b.partial),
                    format!("{:.4}", l2_run.eval[k].ratio),
                ]
            })
            .collect();
        let during_rows: Vec<Vec<String>> = during
            .iter()
            .zip(&neurons_during)
            .map(|((step, c), n)| {
                let mean = |f: fn(&Counts) -> usize| {
                    c.iter().map(f).sum::<usize>() as f64 / c.len() as f64
                };
                let neurons = |f: fn(&NeuronCounts) -> usize| {
                    n.iter().map(f).sum::<usize>() as f64 / n.len() as f64
                };
                vec![
                    format!("{step}"),
                    format!("{:.1}", mean(|c| c.computed)),
                    format!("{:.1}", mean(|c| c.zero)),
                    format!("{:.1}", mean(|c| c.partial)),
                    c.iter()
                        .map(|c| c.computed.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    format!(
                        "{:.1} / {:.1} / {:.1}",
                        neurons(|n| n.alive),
                        neurons(|n| n.silent),
                        neurons(|n| n.dead)
                    ),
                ]
            })
            .collect();
        let neuron_mean = |f: fn(&NeuronCounts) -> usize| -> Vec<f64> {
            neurons_during
                .iter()
                .map(|n| n.iter().map(f).sum::<usize>() as f64 / n.len() as f64)
                .collect()
        };
        let steps_x: Vec<f64> = during.iter().map(|(s, _)| *s as f64).collect();
        for (what, f, style) in [
            (
                "alive",
                (|n: &NeuronCounts| n.alive) as fn(&NeuronCounts) -> usize,
                SeriesStyle::LinePoints,
            ),
            ("silent", |n: &NeuronCounts| n.silent, SeriesStyle::Dashed),
            ("dead", |n: &NeuronCounts| n.dead, SeriesStyle::Points),
        ] {
            neuron_series.push(Series {
                label: format!("{what}, {}", s.variant.name()),
                x: steps_x.clone(),
                y: neuron_mean(f),
                err: None,
                style,
            });
        }
        let main_along: Vec<(u64, f64)> = during
            .iter()
            .map(|(step, c)| {
                (
                    *step,
                    c.iter().map(|c| c.computed).sum::<usize>() as f64 / c.len() as f64,
                )
            })
            .collect();
        let grid =
            super::l1_grid::run(ctx, s.variant, &cfg, (&l1_counts, &l1_neurons, main_along))?;
        let steps: Vec<f64> = during.iter().map(|(s, _)| *s as f64).collect();
        let mean_of = |f: fn(&Counts) -> usize| -> Vec<f64> {
            during
                .iter()
                .map(|(_, c)| c.iter().map(f).sum::<usize>() as f64 / c.len() as f64)
                .collect()
        };
        count_series.push(Series {
            label: format!("computed, {}", s.variant.name()),
            x: steps.clone(),
            y: mean_of(|c| c.computed),
            err: None,
            style: SeriesStyle::LinePoints,
        });
        count_series.push(Series {
            label: format!("partial, {}", s.variant.name()),
            x: steps,
            y: mean_of(|c| c.partial),
            err: None,
            style: SeriesStyle::Dashed,
        });
        resp_panels.push(response_panel(
            &format!("{} L2 (seed 0)", s.variant.name()),
            &l2_run.model.cfg.task(),
            &l2_resp[0],
        ));
        resp_panels.push(response_panel(
            &format!("{} L1 (seed 0)", s.variant.name()),
            &l1.model.cfg.task(),
            &l1_resp[0],
        ));
        weight_panels.push(weight_panel(
            &format!("{} L2 (seed 0)", s.variant.name()),
            &l2_run.model,
            0,
        )?);
        weight_panels.push(weight_panel(
            &format!("{} L1 (seed 0)", s.variant.name()),
            &l1.model,
            0,
        )?);
        let final_mean =
            l1_counts.iter().map(|c| c.computed).sum::<usize>() as f64 / l1_counts.len() as f64;
        let verdict = if holds {
            format!(
                "Holds ({}): every seed computes exactly {h} features, none partially.",
                s.name
            )
        } else {
            format!(
                "Does not hold as stated ({}): computed features per seed {:?} (mean {final_mean:.1}, n_hidden = {h}), partial {:?}.",
                s.name,
                l1_counts.iter().map(|c| c.computed).collect::<Vec<_>>(),
                l1_counts.iter().map(|c| c.partial).collect::<Vec<_>>()
            )
        };
        let markdown = format!(
            "Setting: {}. `{}` trained on L1 (|out − y|), {} steps, {} seeds, otherwise the seed's \
             setting; the L2 models of claim 1 beside it. Classification of feature i from its \
             response to x = v·e_i on {RESPONSE_POINTS} points of [−1, 1]: with ρ = RMS ReLU(v), \
             *computed* if RMS(out_i − r·v − ReLU(v))/ρ ≤ {RESPONSE_TOLERANCE}, *zero* if \
             RMS(out_i − r·v)/ρ ≤ {RESPONSE_TOLERANCE}, else *partial*.\n\n\
             Neurons on {host} samples of the evaluation stream, from the MLP folded into feature \
             space (W1' = W1·W_E, W2' = W_Eᵀ·W2): *dead* if never active, *silent* if active but its \
             largest output ReLU(W1'x)_j·‖W2'_(:,j)‖ stays below {SILENT_OUTPUT}, else *alive*. \
             *Naive solution*: the weights that compute the first {h} features exactly and output 0 \
             for the others (W1 = [I | 0]·(W_EᵀW_E)⁻¹W_Eᵀ, W2 = W_E(W_EᵀW_E)⁻¹[I ; 0]), built, \
             not trained, on each seed's embedding and evaluated like the trained models.\n\n\
             Final classification (computed / zero / partial):\n\n{}\n\
             During L1 training (mean over seeds; computed per seed; neurons alive / silent / dead, \
             mean over seeds):\n\n{}\n{}",
            s.name,
            s.variant.name(),
            plan.l1_steps,
            plan.seeds,
            table(&["seed", "L1: computed / zero / partial", "L1 loss/naive", "L1 neurons: alive / silent / dead", "naive solution: L1 loss/naive", "L2: computed / zero / partial", "L2 loss/naive"], &rows),
            table(&["step", "computed", "zero", "partial", "computed per seed", "neurons alive / silent / dead"], &during_rows),
            grid.markdown,
        );
        grid_bars.extend(grid.bars);
        grid_panels.push(grid.panel);
        results.push(ClaimResult {
            id: s.id.into(),
            title: "Under L1 loss the model computes exactly n_hidden features and zeroes the rest".into(),
            setting: s.name.into(),
            holds,
            verdict,
            seconds: ctx.elapsed() - t0,
            numbers: json!({
                "n_hidden": h,
                "l1_final_counts": l1_counts,
                "l2_final_counts": l2_counts,
                "l1_loss_over_naive": l1.eval.iter().map(|e| e.ratio).collect::<Vec<_>>(),
                "during_training": during.iter().map(|(s, c)| json!({"step": s, "counts": c})).collect::<Vec<_>>(),
                "neurons_during_training": during.iter().zip(&neurons_during).map(|((s, _), n)| json!({"step": s, "neurons": n})).collect::<Vec<_>>(),
                "silent_output": SILENT_OUTPUT,
                "naive_solution": { "l1_loss_over_naive": ideal_eval, "counts": ideal_counts },
                "grid": grid.numbers,
            }),
            markdown,
        });
    }
    let (p_resp, l_resp) = ctx.figure("claim3_response.png");
    panels(
        &p_resp,
        "Input–output response per feature, L2 vs L1",
        &resp_panels,
    )?;
    let (p_w, l_w) = ctx.figure("claim3_weights.png");
    panels(
        &p_w,
        "Per-feature read-in and write-out norms, L2 vs L1",
        &weight_panels,
    )?;
    let (p_c, l_c) = ctx.figure("claim3_counts.png");
    line_chart(
        &p_c,
        &LineChart {
            title: "Features computed during L1 training (mean over seeds)".into(),
            x_label: "training step".into(),
            y_label: "features".into(),
            log_x: false,
            log_y: false,
            series: count_series,
            hlines: reference_line("n_hidden", plan.base(Variant::EmbRes).n_hidden as f64),
        },
    )?;
    let (p_n, l_n) = ctx.figure("claim3_neurons.png");
    line_chart(
        &p_n,
        &LineChart {
            title: "Neurons during L1 training (mean over seeds)".into(),
            x_label: "training step".into(),
            y_label: "neurons".into(),
            log_x: false,
            log_y: false,
            series: neuron_series,
            hlines: reference_line("n_hidden", plan.base(Variant::EmbRes).n_hidden as f64),
        },
    )?;
    let (p_g, l_g) = ctx.figure("claim3_grid.png");
    bar_chart(
        &p_g,
        &BarChart {
            title:
                "Features computed at the end of L1 training, per grid point (mean ± SE over seeds)"
                    .into(),
            y_label: "computed features".into(),
            bars: grid_bars,
            hlines: reference_line("n_hidden", plan.base(Variant::EmbRes).n_hidden as f64),
        },
    )?;
    let (p_gc, l_gc) = ctx.figure("claim3_grid_training.png");
    panels(
        &p_gc,
        "Features computed during L1 training, per grid point (mean over seeds)",
        &grid_panels,
    )?;
    let figs = format!(
        "![response L2 vs L1]({l_resp})\n\n![weight bars L2 vs L1]({l_w})\n\n![computed features during training]({l_c})\n\n\
         ![neurons during training]({l_n})\n\n![computed features over the grid]({l_g})\n\n\
         ![computed features during training over the grid]({l_gc})\n"
    );
    if let Some(last) = results.last_mut() {
        last.markdown.push_str(&format!("\n{figs}"));
    }
    Ok(results)
}
