//! `tmcc eval`: re-evaluate a checkpoint on the evaluation stream.

use std::path::PathBuf;

use tmcc_lab::rundir::load_checkpoint;
use tmcc_lab::runner::eval_model;

use crate::device_arg::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint.safetensors file or a run directory holding one.
    pub checkpoint: PathBuf,
    /// Evaluation samples (default: the config's eval_samples).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Evaluate at this feature probability instead of each instance's training p.
    #[arg(long)]
    pub p: Option<f64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let ck = load_checkpoint(&args.checkpoint)?;
    let cfg = &ck.model.cfg;
    if let Some(p) = args.p {
        anyhow::ensure!(p > 0.0 && p <= 1.0, "--p must be in (0, 1], got {p}");
    }
    let samples = args.samples.unwrap_or(cfg.eval_samples);
    anyhow::ensure!(samples >= 1, "--samples must be ≥ 1");
    let ps = args.p.map(|p| vec![p; cfg.instances]);
    let device = args.device.select()?;
    let eval = eval_model(&device, &ck.model, samples, ps.as_deref())?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&eval)?);
    } else {
        for e in &eval {
            outln!(
                "instance {:>3}  p {:.4}  loss {:.6e} ± {:.1e}  naive {:.6e}  loss/naive {:.4} ± {:.4}",
                e.instance, e.p, e.loss, e.loss_se, e.naive, e.ratio, e.ratio_se
            );
        }
    }
    Ok(0)
}
