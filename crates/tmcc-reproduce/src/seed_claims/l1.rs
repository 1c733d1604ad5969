//! Claim 3: trained on L1 instead of L2, the model computes exactly `n_hidden` features
//! (response `out_i − r·v ≈ ReLU(v)`) and outputs 0 beyond the residual for the rest.
//!
//! Two settings: the seed notebook's (`emb_mlp`, r = 0; claim "3") and APD's (`emb_res`,
//! r = 1; claim "3b"). The count of computed / zero / partial features (classification in
//! `tmcc_model::eval`, threshold 0.2 on relative RMS errors) is followed during training.
//! Holds for a setting if every seed ends with exactly `n_hidden` computed features and no
//! partial ones.

use serde_json::json;
use tmcc_lab::figures::{panels, response_panel, weight_panel};
use tmcc_lab::response::{response, Counts};
use tmcc_model::config::LossName;
use tmcc_model::eval::RESPONSE_TOLERANCE;
use tmcc_model::{Config, Variant};
use tmcc_plot::{line_chart, LineChart, Series, SeriesStyle};

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
        let device = &ctx.device;
        let l1 = ctx.train_observed(&format!("{} L1", s.variant.name()), &cfg, None, |p, t| {
            if p.step.is_multiple_of(every) || p.step == p.steps {
                let r = response(device, &t.snapshot()?, RESPONSE_POINTS)?;
                during.push((p.step, r.iter().map(|f| Counts::of(f)).collect()));
            }
            Ok(())
        })?;
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
                vec![
                    format!("{}", cfg.instance_seed(k)),
                    format!("{} / {} / {}", a.computed, a.zero, a.partial),
                    format!("{:.4}", l1.eval[k].ratio),
                    format!("{} / {} / {}", b.computed, b.zero, b.partial),
                    format!("{:.4}", l2_run.eval[k].ratio),
                ]
            })
            .collect();
        let during_rows: Vec<Vec<String>> = during
            .iter()
            .map(|(step, c)| {
                let mean = |f: fn(&Counts) -> usize| {
                    c.iter().map(f).sum::<usize>() as f64 / c.len() as f64
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
                ]
            })
            .collect();
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
            &l2_resp[0],
        ));
        resp_panels.push(response_panel(
            &format!("{} L1 (seed 0)", s.variant.name()),
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
             Final classification (computed / zero / partial):\n\n{}\n\
             During L1 training (mean over seeds; last column: computed per seed):\n\n{}\n",
            s.name,
            s.variant.name(),
            plan.l1_steps,
            plan.seeds,
            table(&["seed", "L1: computed / zero / partial", "L1 loss/naive", "L2: computed / zero / partial", "L2 loss/naive"], &rows),
            table(&["step", "computed", "zero", "partial", "computed per seed"], &during_rows),
        );
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
    let figs = format!(
        "![response L2 vs L1]({l_resp})\n\n![weight bars L2 vs L1]({l_w})\n\n![computed features during training]({l_c})\n"
    );
    if let Some(last) = results.last_mut() {
        last.markdown.push_str(&format!("\n{figs}"));
    }
    Ok(results)
}
