//! Everything the section measures on one trained target (all its seeds), with the lab's
//! interventions: loss/naive, APD's one-hot output at `e_42` with its residual-vs-MLP
//! split ([`tmcc_lab::one_hot`]), APD's signal-to-noise ratios ([`tmcc_lab::snr`]), the
//! response classes ([`tmcc_lab::response`], target `act(c_i·v)`) and the transplant
//! (the embedding folded into every block, [`tmcc_lab::transplant`]) evaluated on the same
//! stream.

use serde::Serialize;
use tmcc_lab::one_hot::{one_hot, OneHotSummary};
use tmcc_lab::response::{response, Counts};
use tmcc_lab::runner::eval_model;
use tmcc_lab::snr::{instance_snr, InstanceSnr};
use tmcc_lab::stats::summarize;
use tmcc_lab::transplant::transplant;
use tmcc_model::eval::InstanceEval;
use tmcc_model::Model;

use crate::ctx::Ctx;
use crate::Error;

/// APD's example feature of the one-hot output (its 1-layer target: ≈ 1.6 at `e_42`).
pub const APD_FEATURE: usize = 42;

/// Grid points of the response classification.
const RESPONSE_POINTS: usize = 41;

/// One seed of one target.
#[derive(Clone, Debug, Serialize)]
pub struct SeedMeasures {
    pub seed: u64,
    pub eval: InstanceEval,
    /// `out_42` at `x = e_42`, its label, and its split (skip, one share per block).
    pub out_42: f64,
    pub label_42: f64,
    pub skip_42: f64,
    pub blocks_42: Vec<f64>,
    /// Means over all features of the same.
    pub one_hot_mean: OneHotSummary,
    /// `None` for the seeds beyond the plan's SNR seeds.
    pub snr: Option<InstanceSnr>,
    pub classes: Counts,
    pub transplant: InstanceEval,
}

/// One target, every seed.
#[derive(Clone, Debug, Serialize)]
pub struct TargetMeasures {
    pub seeds: Vec<SeedMeasures>,
    /// Mean and SE over seeds of loss/naive, and of the transplant's.
    pub ratio: (f64, f64),
    pub transplant_ratio: (f64, f64),
    /// One-sided p-value of `mean loss/naive < 1` over seeds.
    pub p_below_naive: f64,
}

/// A seed beats the naive loss if `loss/naive + 2·SE(eval) < 1`.
pub fn beats_naive(e: &InstanceEval) -> bool {
    e.ratio + 2.0 * e.ratio_se < 1.0
}

/// Measures every seed of `model` (trained, evaluated in `eval`).
pub fn measure(
    ctx: &Ctx,
    model: &Model<f32>,
    eval: &[InstanceEval],
) -> Result<TargetMeasures, Error> {
    let cfg = &model.cfg;
    let hot = one_hot(model)?;
    let classes = response(&ctx.device, model, RESPONSE_POINTS)?;
    let moved = transplant(model)?;
    let moved_eval = eval_model(&ctx.device, &moved, cfg.eval_samples, None)?;
    let seeds: Vec<SeedMeasures> = (0..model.instances())
        .map(|k| {
            let e42 = &hot[k][APD_FEATURE.min(cfg.n_feat - 1)];
            SeedMeasures {
                seed: cfg.instance_seed(k),
                eval: eval[k].clone(),
                out_42: e42.out,
                label_42: e42.label,
                skip_42: e42.skip,
                blocks_42: e42.blocks.clone(),
                one_hot_mean: OneHotSummary::of(&hot[k]),
                snr: (k < ctx.plan.apd_snr_seeds).then(|| instance_snr(model, k)),
                classes: Counts::of(&classes[k]),
                transplant: moved_eval[k].clone(),
            }
        })
        .collect();
    let over_seeds = |g: &dyn Fn(&SeedMeasures) -> f64| {
        let v: Vec<f64> = seeds.iter().map(g).collect();
        summarize(&v, 1.0)
    };
    let ratio = over_seeds(&|s| s.eval.ratio);
    let moved_ratio = over_seeds(&|s| s.transplant.ratio);
    Ok(TargetMeasures {
        ratio: (ratio.mean, ratio.se),
        transplant_ratio: (moved_ratio.mean, moved_ratio.se),
        p_below_naive: ratio.p_below,
        seeds,
    })
}
