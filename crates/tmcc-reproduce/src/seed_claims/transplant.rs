//! Claim 2: a trained `emb_res` transplanted into a `res_mlp` (`W1' = W1·W_E`,
//! `W2' = W_Eᵀ·W2`) never beats the naive loss, at any `p`, for any seed.
//!
//! All `p` values and seeds train side by side as instances of one run. Each model and its
//! transplant are evaluated on the same stream (same `eval_seed` and `p`). A transplant
//! "beats naive" if `loss/naive + 2·SE < 1` (SE of its evaluation). Shown beside: the
//! transplant fine-tuned on the clean task, and `res_mlp` trained from scratch.

use serde_json::json;
use tmcc_lab::runner::eval_model;
use tmcc_lab::stats::summarize;
use tmcc_lab::transplant::transplant;
use tmcc_model::eval::InstanceEval;
use tmcc_model::{Config, Variant};
use tmcc_plot::{line_chart, LineChart, Series, SeriesStyle};

use crate::ctx::{reference_line, ClaimResult, Ctx};
use crate::table::{pm, table};
use crate::Error;

/// Mean and SE over seeds of loss/naive at each `p` (instances are `p`-major).
fn by_p(eval: &[InstanceEval], ps: &[f64], seeds: usize) -> Vec<(f64, f64)> {
    (0..ps.len())
        .map(|i| {
            let r: Vec<f64> = eval[i * seeds..(i + 1) * seeds]
                .iter()
                .map(|e| e.ratio)
                .collect();
            let s = summarize(&r, 1.0);
            (s.mean, s.se)
        })
        .collect()
}

pub fn run(ctx: &mut Ctx) -> Result<ClaimResult, Error> {
    ctx.stage = "[claim 2/4: transplant]".into();
    let t0 = ctx.elapsed();
    let plan = ctx.plan.clone();
    let ps = plan.transplant_ps.clone();
    let seeds = plan.sweep_seeds;
    let k = ps.len() * seeds;
    let cfg = Config {
        instances: k,
        steps: plan.sweep_steps,
        log_every: (plan.sweep_steps / 20).max(1),
        p_per_instance: ps.iter().flat_map(|&p| vec![p; seeds]).collect(),
        seed_per_instance: (0..k).map(|i| (i % seeds) as u64).collect(),
        ..plan.base(Variant::EmbRes)
    };
    let emb = ctx.train("emb_res across p", &cfg, None)?;
    let moved = transplant(&emb.model)?;
    let moved_eval = eval_model(&ctx.device, &moved, cfg.eval_samples, None)?;
    ctx.log("transplanted and evaluated");
    let ft_cfg = Config {
        steps: plan.finetune_steps,
        log_every: (plan.finetune_steps / 10).max(1),
        ..moved.cfg.clone()
    };
    let tuned = ctx.train("transplant fine-tuned", &ft_cfg, Some(moved.clone()))?;
    let scratch_cfg = Config {
        variant: Variant::ResMlp,
        ..cfg.clone()
    };
    let scratch = ctx.train("res_mlp from scratch", &scratch_cfg, None)?;

    let beats: Vec<bool> = moved_eval
        .iter()
        .map(|e| e.ratio + 2.0 * e.ratio_se < 1.0)
        .collect();
    let holds = !beats.iter().any(|&b| b);
    let curves = [
        ("emb_res (trained)", by_p(&emb.eval, &ps, seeds)),
        ("transplanted res_mlp", by_p(&moved_eval, &ps, seeds)),
        ("transplant fine-tuned", by_p(&tuned.eval, &ps, seeds)),
        ("res_mlp from scratch", by_p(&scratch.eval, &ps, seeds)),
    ];
    let rows: Vec<Vec<String>> = ps
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = vec![format!("{p}")];
            row.extend(curves.iter().map(|(_, c)| pm(c[i].0, c[i].1)));
            let n_beat = beats[i * seeds..(i + 1) * seeds]
                .iter()
                .filter(|&&b| b)
                .count();
            row.push(format!("{n_beat} / {seeds}"));
            row
        })
        .collect();
    let (fig_path, fig_link) = ctx.figure("claim2_transplant.png");
    line_chart(
        &fig_path,
        &LineChart {
            title: "Transplant across p (mean ± SE over seeds)".into(),
            x_label: "feature probability p".into(),
            y_label: "loss / naive".into(),
            log_x: true,
            log_y: false,
            series: curves
                .iter()
                .map(|(name, c)| Series {
                    label: name.to_string(),
                    x: ps.clone(),
                    y: c.iter().map(|v| v.0).collect(),
                    err: Some(c.iter().map(|v| v.1).collect()),
                    style: SeriesStyle::LinePoints,
                })
                .collect(),
            hlines: reference_line("naive", 1.0),
        },
    )?;
    let mut header = vec!["p"];
    header.extend(curves.iter().map(|(n, _)| *n));
    header.push("transplants beating naive");
    let verdict = if holds {
        format!("Holds: none of the {k} transplanted models beats the naive loss.")
    } else {
        format!(
            "Does not hold: {} of {k} transplanted models beat the naive loss.",
            beats.iter().filter(|&&b| b).count()
        )
    };
    let markdown = format!(
        "Setup: `emb_res` (r = 1, D = 1000) at the seed's setting, {} steps, {seeds} seeds at each \
         p ∈ {ps:?}, all {k} trained side by side as instances of one run. Each is transplanted \
         into `res_mlp` (W1' = W1·W_E, W2' = W_Eᵀ·W2) and evaluated on the same stream \
         ({} samples). Fine-tuning: {} further Adam steps on the clean task from the transplanted \
         weights. A transplant beats naive if loss/naive + 2·SE(eval) < 1.\n\n{}\n\
         ![transplant across p]({fig_link})\n",
        plan.sweep_steps,
        plan.eval_samples,
        plan.finetune_steps,
        table(&header, &rows)
    );
    let numbers = json!({
        "p": ps,
        "seeds": seeds,
        "emb_res": emb.eval,
        "transplanted": moved_eval,
        "fine_tuned": tuned.eval,
        "res_mlp_scratch": scratch.eval,
        "transplant_beats_naive": beats,
    });
    Ok(ClaimResult {
        id: "2".into(),
        title: "A transplant of emb_res into res_mlp never beats the naive loss".into(),
        setting: "APD (r = 1)".into(),
        holds,
        verdict,
        seconds: ctx.elapsed() - t0,
        numbers,
        markdown,
    })
}
