//! Claim 4: the gain below naive comes from the residual noise, not from computing more
//! ReLUs: it vanishes as the noise goes to zero.
//!
//! Noise size: the RMS of the off-diagonal entries of the residual's mixing, i.e. of
//! `N = W_EᵀW_E − I` for `emb_res` (≈ 1/√D; 0 for the orthogonal embedding) and of `σM`
//! for the `mix` model (≈ σ). Sweeps: `emb_res` over `d_emb` plus `emb_res_orth`, and `mix`
//! (symmetric Gaussian `M`) over σ, all side by side as instances where shapes allow.
//! Holds if both zero-noise controls (`emb_res_orth`, σ = 0) are not below naive
//! (one-sided t-test p ≥ 0.05) while some noisy setting is below (p < 0.01, mean + 2·SE < 1).

use serde_json::json;
use tmcc_lab::eigen::offdiag_rms;
use tmcc_lab::stats::{summarize, Summary};
use tmcc_model::{Config, Model, Variant};
use tmcc_plot::{line_chart, LineChart, Series, SeriesStyle};

use super::variants::{is_below, is_not_below};
use crate::ctx::{reference_line, ClaimResult, Ctx};
use crate::table::{pm, pval, table};
use crate::Error;

/// RMS of the off-diagonal entries of every instance's residual mixing, averaged.
pub fn noise_rms(model: &Model<f32>) -> f64 {
    let cfg = &model.cfg;
    let (f, r) = (cfg.n_feat, cfg.res_factor());
    let per: Vec<f64> = (0..model.instances())
        .map(|k| {
            let table = model.residual_table(k).expect("residual variant");
            let noise: Vec<f64> = table.iter().map(|&v| v as f64 / r).collect();
            offdiag_rms(&noise, f)
        })
        .collect();
    per.iter().sum::<f64>() / per.len() as f64
}

struct Point {
    family: &'static str,
    setting: String,
    noise: f64,
    summary: Summary,
}

pub fn run(ctx: &mut Ctx) -> Result<ClaimResult, Error> {
    ctx.stage = "[claim 4/4: noise]".into();
    let t0 = ctx.elapsed();
    let plan = ctx.plan.clone();
    let sweep = |v: Variant| Config {
        steps: plan.sweep_steps,
        instances: plan.sweep_seeds,
        log_every: (plan.sweep_steps / 20).max(1),
        ..plan.base(v)
    };
    let mut points = Vec::new();
    for &d in &plan.d_embs {
        let cfg = Config {
            d_emb: d,
            ..sweep(Variant::EmbRes)
        };
        let out = ctx.train(&format!("emb_res D={d}"), &cfg, None)?;
        let ratios: Vec<f64> = out.eval.iter().map(|e| e.ratio).collect();
        points.push(Point {
            family: "emb_res",
            setting: format!("d_emb = {d}"),
            noise: noise_rms(&out.model),
            summary: summarize(&ratios, 1.0),
        });
    }
    let orth = ctx.train("emb_res_orth", &sweep(Variant::EmbResOrth), None)?;
    let orth_ratios: Vec<f64> = orth.eval.iter().map(|e| e.ratio).collect();
    points.push(Point {
        family: "emb_res_orth",
        setting: "d_emb = 1000, orthogonal".into(),
        noise: noise_rms(&orth.model),
        summary: summarize(&orth_ratios, 1.0),
    });
    let seeds = plan.sweep_seeds;
    let sigmas = plan.sigmas.clone();
    let k = sigmas.len() * seeds;
    let mix_cfg = Config {
        instances: k,
        sigma_per_instance: sigmas.iter().flat_map(|&s| vec![s; seeds]).collect(),
        seed_per_instance: (0..k).map(|i| (i % seeds) as u64).collect(),
        ..sweep(Variant::Mix)
    };
    let mix = ctx.train("mix across sigma", &mix_cfg, None)?;
    for (i, &s) in sigmas.iter().enumerate() {
        let ratios: Vec<f64> = mix.eval[i * seeds..(i + 1) * seeds]
            .iter()
            .map(|e| e.ratio)
            .collect();
        let m = mix.model.mixing.as_ref().expect("mix model");
        let f = mix_cfg.n_feat;
        let rms_m = (m[..f * f].iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
            / (f * (f - 1)) as f64)
            .sqrt();
        points.push(Point {
            family: "mix",
            setting: format!("σ = {s}"),
            noise: s.abs() * rms_m,
            summary: summarize(&ratios, 1.0),
        });
    }
    let controls: Vec<&Point> = points.iter().filter(|p| p.noise < 1e-6).collect();
    let noisy_below = points
        .iter()
        .any(|p| p.noise >= 1e-6 && is_below(&p.summary));
    let controls_ok = !controls.is_empty() && controls.iter().all(|p| is_not_below(&p.summary));
    let holds = controls_ok && noisy_below;
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            vec![
                format!("`{}`", p.family),
                p.setting.clone(),
                format!("{:.4}", p.noise),
                pm(p.summary.mean, p.summary.se),
                format!("{:.4}", 1.0 - p.summary.mean),
                pval(p.summary.p_below),
            ]
        })
        .collect();
    let series = ["emb_res", "mix"]
        .iter()
        .map(|fam| {
            let mut pts: Vec<&Point> = points
                .iter()
                .filter(|p| p.family == *fam || (*fam == "emb_res" && p.family == "emb_res_orth"))
                .collect();
            pts.sort_by(|a, b| a.noise.total_cmp(&b.noise));
            Series {
                label: if *fam == "emb_res" {
                    "emb_res over d_emb (noise 0: orthogonal)".into()
                } else {
                    "mix over σ".into()
                },
                x: pts.iter().map(|p| p.noise).collect(),
                y: pts.iter().map(|p| p.summary.mean).collect(),
                err: Some(pts.iter().map(|p| p.summary.se).collect()),
                style: SeriesStyle::LinePoints,
            }
        })
        .collect();
    let (fig_path, fig_link) = ctx.figure("claim4_noise.png");
    line_chart(
        &fig_path,
        &LineChart {
            title: "Loss / naive against the size of the residual noise".into(),
            x_label: "RMS of off-diagonal mixing (N or σM)".into(),
            y_label: "loss / naive".into(),
            log_x: false,
            log_y: false,
            series,
            hlines: reference_line("naive", 1.0),
        },
    )?;
    let verdict = match (controls_ok, noisy_below) {
        (true, true) => "Holds: with zero noise (orthogonal embedding, σ = 0) the model is not below naive; with noise it is.".to_string(),
        (false, _) => "Does not hold: a zero-noise control is below naive.".to_string(),
        (true, false) => "Does not hold: no noisy setting is below naive.".to_string(),
    };
    let markdown = format!(
        "Setup: the seed's setting with {} steps and {seeds} seeds per point. `emb_res` over \
         d_emb ∈ {:?} (noise ≈ 1/√D) and `emb_res_orth` (D = 1000, noise 0); `mix` (no \
         embedding, residual r·(I + σM)·x, symmetric Gaussian M with unit off-diagonal variance) \
         over σ ∈ {sigmas:?}, trained side by side as {k} instances. Gain = 1 − loss/naive. \
         Test as in claim 1.\n\n{}\n![gain against noise]({fig_link})\n",
        plan.sweep_steps,
        plan.d_embs,
        table(
            &[
                "model",
                "setting",
                "noise RMS",
                "loss/naive",
                "gain",
                "p (below naive)"
            ],
            &rows
        )
    );
    let numbers = json!({
        "points": points.iter().map(|p| json!({"model": p.family, "setting": p.setting, "noise_rms": p.noise, "summary": p.summary})).collect::<Vec<_>>(),
        "controls_not_below": controls_ok,
        "some_noisy_below": noisy_below,
    });
    Ok(ClaimResult {
        id: "4".into(),
        title: "The gain below naive comes from the residual noise and vanishes without it".into(),
        setting: "APD (r = 1) and the mix model".into(),
        holds,
        verdict,
        seconds: ctx.elapsed() - t0,
        numbers,
        markdown,
    })
}
