//! `tmcc response CHECKPOINT`: classify every feature of every instance by its input–output
//! response (`tmcc_lab::response`, on `--device`). For `x = v·e_i` on `--points` values of
//! `v ∈ [-1, 1]`, `resid = out_i − r·v` (`r` = 0 without a residual stream), the target
//! `t_i = act(c_i·v)` (the model's activation and label coefficient) and `ρ = RMS_v t_i`:
//! *computed* if `RMS(resid − t_i)/ρ ≤ 0.2`, else *zero* if `RMS(resid)/ρ ≤ 0.2`, else
//! *partial* (`tmcc_model::eval`). Output: counts per instance
//! (default), one CSV row per feature (`--csv`), or JSON with both (`--json`).

use std::path::PathBuf;

use tmcc_lab::response::Report;
use tmcc_lab::rundir::load_checkpoint;

use crate::device_arg::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint file or a run directory holding one.
    pub checkpoint: PathBuf,
    /// Grid points of v on [-1, 1].
    #[arg(long, default_value_t = 41)]
    pub points: usize,
    /// JSON: thresholds, counts and every feature's class and errors.
    #[arg(long)]
    pub json: bool,
    /// CSV: instance,seed,p,feature,class,err_computed,err_zero.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    anyhow::ensure!(
        args.points >= 3,
        "--points must be ≥ 3, got {}",
        args.points
    );
    let ck = load_checkpoint(&args.checkpoint)?;
    let cfg = &ck.model.cfg;
    let device = args.device.select()?;
    let report = Report::new(&device, &ck.model, args.points)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        outln!("instance,seed,p,feature,class,err_computed,err_zero");
        for i in &report.instances {
            for f in &i.features {
                let class = serde_json::to_value(f.class)?;
                outln!(
                    "{},{},{},{},{},{},{}",
                    i.instance,
                    i.seed,
                    i.p,
                    f.feature,
                    class.as_str().unwrap_or_default(),
                    f.err_computed,
                    f.err_zero
                );
            }
        }
    } else {
        outln!(
            "{} (F = {}, H = {}); {}",
            report.variant,
            cfg.n_feat,
            cfg.n_hidden,
            report.rule
        );
        outln!("instance,seed,p,computed,zero,partial");
        for i in &report.instances {
            outln!(
                "{},{},{},{},{},{}",
                i.instance,
                i.seed,
                i.p,
                i.computed,
                i.zero,
                i.partial
            );
        }
    }
    Ok(0)
}
