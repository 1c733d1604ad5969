//! `tmcc sweep`: expand a sweep file into runs, train this shard's runs in groups of
//! instances side by side, evaluate, and keep `results.csv` / `results.json` up to date
//! after every group (`complete: true` once the shard is done).
//!
//! Shards: `--shard K/N` (0-based, `0 ≤ K < N`). Without it, under a Slurm job array,
//! `K = SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` (MIN taken as 0 when unset) and
//! `N = SLURM_ARRAY_TASK_COUNT`, so both `--array=0-9` and `--array=1-10` work; the array
//! must be contiguous with step 1.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use tmcc_lab::rundir::{Metrics, RunDir, METRICS};
use tmcc_lab::runner::{eval_model, train};
use tmcc_lab::sweep::{groups, row, GroupRecord, Place, Results, Shard, Sweep, SWEEP_FILE};
use tmcc_model::io::write_atomic;

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

/// The shard to run: `--shard`, else the Slurm array task, else the whole sweep.
fn shard_of(flag: Option<&str>) -> anyhow::Result<(Shard, String)> {
    if let Some(s) = flag {
        let shard = Shard::parse(s).map_err(|e| anyhow::anyhow!("--shard: {e}"))?;
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
        return Ok((Shard::WHOLE, "no --shard, no Slurm array".into()));
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
        Shard { k: id - min, n },
        format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={n}"),
    ))
}

fn secs(s: f64) -> String {
    if s >= 90.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.sweep)
        .with_context(|| format!("cannot read sweep file {}", args.sweep.display()))?;
    let sweep = Sweep::from_toml_str(&text).with_context(|| args.sweep.display().to_string())?;
    anyhow::ensure!(args.max_instances >= 1, "--max-instances must be ≥ 1");
    let (shard, source) = shard_of(args.shard.as_deref())?;
    // Every run is validated, whatever the shard, so a bad grid fails on every shard alike.
    let all = sweep
        .expand()
        .with_context(|| args.sweep.display().to_string())?;
    let range = shard.range(all.len());
    let mine: Vec<(usize, tmcc_model::Config)> =
        range.clone().map(|i| (i, all[i].clone())).collect();
    let groups = groups(&mine, args.max_instances);
    for g in &groups {
        g.cfg
            .validate()
            .with_context(|| format!("group of runs {:?}", g.runs))?;
    }
    let log = |msg: String| {
        if !args.quiet {
            eprintln!("[sweep {shard}] {msg}");
        }
    };
    let device = args.device.select()?;
    let dir = RunDir::create(&args.out, args.force)?;
    write_atomic(&dir.file(SWEEP_FILE), text.as_bytes())?;
    let mut results = Results::new(&sweep, shard);
    results.write(&dir.path)?;
    log(format!(
        "{} runs in the grid; this shard ({source}) has runs {}..{} in {} group(s); sweep hash {}",
        all.len(),
        range.start,
        range.end,
        groups.len(),
        results.sweep_hash
    ));
    let interrupted = interrupt_flag()?;
    let t0 = Instant::now();
    let total_work: f64 = groups
        .iter()
        .map(|g| (g.cfg.steps * g.runs.len() as u64) as f64)
        .sum();
    let mut work_done = 0.0;
    for (gi, g) in groups.iter().enumerate() {
        let cfg = &g.cfg;
        log(format!(
            "group {}/{}: runs {}..={} — {} × {} instance(s), {} steps",
            gi + 1,
            groups.len(),
            g.runs[0],
            g.runs[g.runs.len() - 1],
            cfg.variant.name(),
            cfg.instances,
            cfg.steps
        ));
        let tg = Instant::now();
        let mut last = Instant::now();
        let weight = g.runs.len() as f64;
        let model = tmcc_model::Model::<f32>::new(cfg)?;
        let trained = train(&device, model, None, |p, _| {
            if last.elapsed().as_secs_f64() >= 5.0 {
                last = Instant::now();
                let done = work_done + p.step as f64 * weight;
                let rate = done / t0.elapsed().as_secs_f64().max(1e-9);
                let mean = p.loss.iter().sum::<f64>() / p.loss.len() as f64;
                log(format!(
                    "group {}/{}: step {}/{} loss {mean:.3e}; shard {:.0}% eta {}",
                    gi + 1,
                    groups.len(),
                    p.step,
                    p.steps,
                    100.0 * done / total_work.max(1.0),
                    secs((total_work - done) / rate.max(1e-9))
                ));
            }
            Ok(!interrupted.load(Ordering::SeqCst))
        })
        .with_context(|| format!("group of runs {:?}", g.runs))?;
        let steps_done = trained.checkpoint.step;
        if steps_done < cfg.steps {
            eprintln!(
                "interrupted in group {}/{}; {} of {} runs of this shard are in {}; rerun with --force to start over",
                gi + 1,
                groups.len(),
                results.rows.len(),
                range.len(),
                dir.path.display()
            );
            return Ok(130);
        }
        let eval = eval_model(&device, &trained.checkpoint.model, cfg.eval_samples, None)
            .with_context(|| format!("evaluating the group of runs {:?}", g.runs))?;
        let name = g.dir_name();
        let run_dir = RunDir::create(&dir.path.join(&name), false)?;
        run_dir.write_config(cfg)?;
        run_dir.write_checkpoint(&trained.checkpoint)?;
        let final_loss = trained
            .log
            .last()
            .map(|l| l.loss.clone())
            .unwrap_or_default();
        let seconds = tg.elapsed().as_secs_f64();
        for (k, &index) in g.runs.iter().enumerate() {
            results.rows.push(row(
                index,
                &all[index],
                &eval[k],
                final_loss.get(k).copied().unwrap_or(f64::NAN),
                steps_done,
                &Place {
                    shard,
                    dir: &name,
                    instance: k,
                },
            ));
        }
        run_dir.write_json(
            METRICS,
            &Metrics {
                steps_done,
                loss_curve: trained.log,
                final_train_loss: final_loss,
                eval: eval.clone(),
                seconds,
                device: device.describe(),
            },
        )?;
        results.groups.push(GroupRecord {
            dir: name,
            runs: g.runs.clone(),
            seconds,
        });
        results.complete = results.rows.len() == range.len();
        results.write(&dir.path)?;
        work_done += cfg.steps as f64 * weight;
        let ratios: Vec<String> = eval
            .iter()
            .take(8)
            .map(|e| format!("{:.4}", e.ratio))
            .collect();
        log(format!(
            "group {}/{} done in {}: loss/naive {}{}",
            gi + 1,
            groups.len(),
            secs(seconds),
            ratios.join(" "),
            if eval.len() > 8 { " …" } else { "" }
        ));
    }
    results.complete = true;
    results.write(&dir.path)?;
    eprintln!(
        "wrote {} ({} rows: shard {shard}, runs {}..{} of {}) in {}",
        Path::new(&dir.path)
            .join(tmcc_lab::sweep::RESULTS_CSV)
            .display(),
        results.rows.len(),
        range.start,
        range.end,
        all.len(),
        secs(t0.elapsed().as_secs_f64())
    );
    Ok(0)
}
