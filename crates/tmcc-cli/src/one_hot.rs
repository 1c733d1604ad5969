//! `tmcc one-hot CHECKPOINT`: APD's one-hot output (`tmcc_lab::one_hot`) of every feature
//! of every instance: for `x = e_i`, the output `out_i`, its label `act(c_i) + r`, and the
//! split of the read-off into the residual (skip) path `R_ii` and each block's share
//! `(W_Eᵀ v_l)_i` (the shares add up to the read-off before the output activation).
//! Runs the dense reference path on the CPU (any depth). Output: one CSV row per feature
//! (default; `--feature I` for one feature, e.g. APD's 42), then one mean line per
//! instance on stderr; or JSON with every feature and the means (`--json`).

use std::path::PathBuf;

use serde_json::json;
use tmcc_lab::one_hot::{one_hot, OneHotSummary};
use tmcc_lab::rundir::load_checkpoint;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint file or a run directory holding one.
    pub checkpoint: PathBuf,
    /// Only this feature (0-based, below n_feat).
    #[arg(long)]
    pub feature: Option<usize>,
    /// JSON: every instance's features and their means.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let ck = load_checkpoint(&args.checkpoint)?;
    let cfg = &ck.model.cfg;
    if let Some(i) = args.feature {
        anyhow::ensure!(
            i < cfg.n_feat,
            "--feature must be below n_feat = {}, got {i}",
            cfg.n_feat
        );
    }
    let all = one_hot(&ck.model)?;
    let keep = |i: usize| args.feature.is_none_or(|want| want == i);
    if args.json {
        let instances: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(k, feats)| {
                json!({
                    "instance": k,
                    "seed": cfg.instance_seed(k),
                    "mean": OneHotSummary::of(feats),
                    "features": feats.iter().filter(|o| keep(o.feature)).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "n_layers": cfg.n_layers, "instances": instances })
            )?
        );
        return Ok(0);
    }
    let blocks: Vec<String> = (0..cfg.n_layers).map(|l| format!("block{l}")).collect();
    outln!("instance,feature,out,label,skip,{}", blocks.join(","));
    for (k, feats) in all.iter().enumerate() {
        for o in feats.iter().filter(|o| keep(o.feature)) {
            let shares: Vec<String> = o.blocks.iter().map(|b| format!("{b:.6}")).collect();
            outln!(
                "{k},{},{:.6},{:.6},{:.6},{}",
                o.feature,
                o.out,
                o.label,
                o.skip,
                shares.join(",")
            );
        }
    }
    for (k, feats) in all.iter().enumerate() {
        let m = OneHotSummary::of(feats);
        let shares: Vec<String> = m.mean_blocks.iter().map(|b| format!("{b:.4}")).collect();
        eprintln!(
            "instance {k}: mean over features out {:.4}, label {:.4}, skip {:.4}, blocks [{}]",
            m.mean_out,
            m.mean_label,
            m.mean_skip,
            shares.join(", ")
        );
    }
    Ok(0)
}
