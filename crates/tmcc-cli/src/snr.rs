//! `tmcc snr CHECKPOINT`: APD's signal-to-noise ratio (`tmcc_lab::snr`) of every instance:
//! for `x = a·e_i + b·e_j` at `(a, b) = (1, 1)` and `(1, −1)` over all ordered pairs
//! `i ≠ j`, and for single features `x = e_i`: `min(|out_i|, |out_j|)` over the sample
//! standard deviation of all `F` outputs. Runs the dense reference path on the CPU (any
//! depth). Output: one CSV row per instance and setting with the mean, minimum, 5 %
//! quantile and median (default), or JSON (`--json`).

use std::path::PathBuf;

use tmcc_lab::rundir::load_checkpoint;
use tmcc_lab::snr::snr;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint file or a run directory holding one.
    pub checkpoint: PathBuf,
    /// JSON: every instance's summaries.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let ck = load_checkpoint(&args.checkpoint)?;
    let all = snr(&ck.model);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(0);
    }
    outln!("instance,input,count,mean,min,q05,median");
    for i in &all {
        let rows = std::iter::once(("single (1)".to_string(), &i.single)).chain(
            i.pairs
                .iter()
                .map(|p| (format!("pair ({}, {})", p.values.0, p.values.1), &p.summary)),
        );
        for (name, s) in rows {
            outln!(
                "{},{name},{},{:.4},{:.4},{:.4},{:.4}",
                i.instance,
                s.count,
                s.mean,
                s.min,
                s.q05,
                s.median
            );
        }
    }
    Ok(0)
}
