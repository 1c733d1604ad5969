//! `tmcc sweep`: expand a sweep file into runs and train this shard's runs
//! (`tmcc_lab::sweep::run`: groups of instances side by side, results rewritten after
//! every group, `complete: true` once the shard is done).
//!
//! Shards: `--shard K/N` (0-based, `0 ≤ K < N`). Without it, under a Slurm job array,
//! `K = SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` (MIN taken as 0 when unset) and
//! `N = SLURM_ARRAY_TASK_COUNT`, so both `--array=0-9` and `--array=1-10` work; the array
//! must be contiguous with step 1.

use std::path::PathBuf;

use anyhow::Context;
use tmcc_lab::runner::fmt_secs;
use tmcc_lab::sweep::{ShardEnd, ShardPlan, ShardRun, SweepShard, SweepSpec};

use crate::common::interrupt_flag;
use crate::device_arg::DeviceArg;

#[derive(clap::Args)]
pub struct Args {
    /// Sweep file: config fields (the base) plus a [grid] table of `field = [values]`.
    pub sweep: PathBuf,
    /// Output directory (must not exist unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Run only shard K of N (0-based), e.g. `--shard 0/4`; default: the Slurm array task
    /// (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT), else all runs.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
    /// Most runs trained side by side as the instances of one model.
    #[arg(long, default_value_t = 64)]
    pub max_instances: usize,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The shard to run: `--shard`, else the Slurm array task, else the whole sweep; and
/// where it came from, for the log.
fn shard_of(flag: Option<&str>) -> anyhow::Result<(SweepShard, String)> {
    if let Some(s) = flag {
        let shard = SweepShard::parse(s).map_err(|e| anyhow::anyhow!("--shard: {e}"))?;
        return Ok((shard, "--shard".into()));
    }
    let var = |name: &str| -> anyhow::Result<Option<usize>> {
        match std::env::var(name) {
            Ok(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{name}=`{v}` is not a non-negative integer")),
            Err(_) => Ok(None),
        }
    };
    let Some(id) = var("SLURM_ARRAY_TASK_ID")? else {
        return Ok((SweepShard::WHOLE, "no --shard, no Slurm array".into()));
    };
    let n = var("SLURM_ARRAY_TASK_COUNT")?
        .context("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
    let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
    anyhow::ensure!(
        id >= min && id - min < n,
        "SLURM_ARRAY_TASK_ID={id} with SLURM_ARRAY_TASK_MIN={min} and SLURM_ARRAY_TASK_COUNT={n}: \
         the array must be contiguous with step 1 (e.g. --array=0-{})",
        n.saturating_sub(1)
    );
    Ok((
        SweepShard { k: id - min, n },
        format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={n}"),
    ))
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.sweep)
        .with_context(|| format!("cannot read sweep file {}", args.sweep.display()))?;
    let spec = SweepSpec::from_toml_str(&text).with_context(|| args.sweep.display().to_string())?;
    anyhow::ensure!(args.max_instances >= 1, "--max-instances must be ≥ 1");
    let (shard, source) = shard_of(args.shard.as_deref())?;
    // Every run is validated, whatever the shard, so a bad grid fails on every shard alike.
    let all = spec
        .expand()
        .with_context(|| args.sweep.display().to_string())?;
    let plan = ShardPlan::new(all, shard, args.max_instances)?;
    let mut log = |msg: &str| {
        if !args.quiet {
            eprintln!("[sweep {shard}] {msg}");
        }
    };
    let (device, device_note) = args.device.select_noted()?;
    plan.check_memory(&device)?;
    let mut sweep = ShardRun::create(&spec, &text, plan, &args.out, args.force)?;
    sweep.device_note = device_note;
    let (n_runs, range) = (sweep.plan.runs.len(), sweep.plan.range.clone());
    log(&format!(
        "{n_runs} runs in the grid; this shard ({source}) has runs {}..{} in {} group(s); sweep hash {}",
        range.start,
        range.end,
        sweep.plan.groups.len(),
        sweep.results.sweep_hash
    ));
    let interrupted = interrupt_flag()?;
    match sweep.run(&device, &mut log, &interrupted)? {
        ShardEnd::Interrupted { group } => {
            eprintln!(
                "interrupted in group {}/{}; {} of {} runs of this shard are in {}; rerun with --force to start over",
                group + 1,
                sweep.plan.groups.len(),
                sweep.results.rows.len(),
                range.len(),
                sweep.dir.path.display()
            );
            Ok(130)
        }
        ShardEnd::Complete { seconds } => {
            eprintln!(
                "wrote {} ({} rows: shard {shard}, runs {}..{} of {n_runs}) in {}",
                sweep.dir.results_csv().display(),
                sweep.results.rows.len(),
                range.start,
                range.end,
                fmt_secs(seconds, 1)
            );
            Ok(0)
        }
    }
}
