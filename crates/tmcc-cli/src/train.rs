//! `tmcc train`: train, checkpoint periodically, evaluate, write the run directory.
//!
//! Ctrl-C stops after the current step and saves a resumable checkpoint (exit 130); a NaN
//! or infinite loss stops with an error and keeps the last good checkpoint.
//! `tmcc train --resume DIR` continues from the checkpoint (optimizer state, step and
//! data-stream positions), so the run ends with exactly the weights of an uninterrupted
//! one; `--resume DIR --steps N` extends a run to `N` steps (with a constant schedule this
//! equals a run trained for `N` steps from the start).
//!
//! Files: `config.toml`, `checkpoint.safetensors`, `progress.json` (the loss curve so far,
//! written with each checkpoint and removed when the run finishes) and, at the end,
//! `metrics.json`. Each is written to `.NAME.tmp-PID` and renamed into place; a process
//! killed mid-write can leave such a temporary file, which `--resume` removes.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tmcc_lab::run::{eval_model, train as train_model, Metrics};
use tmcc_lab::rundir::{RunDir, METRICS};
use tmcc_model::config::Schedule;
use tmcc_model::train::LogPoint;
use tmcc_model::Model;

use crate::common::{clean_temp_files, interrupt_flag};
use crate::config_args::ConfigArgs;
use crate::device_arg::DeviceArg;

/// The loss curve of an unfinished run.
pub const PROGRESS: &str = "progress.json";

#[derive(Serialize, Deserialize)]
struct ProgressFile {
    steps_done: u64,
    loss_curve: Vec<LogPoint>,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub cfg: ConfigArgs,
    /// Output run directory (must not exist unless --force).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted run in this directory (with --steps N: extend it to N steps).
    #[arg(long, conflicts_with_all = ["out", "force"])]
    pub resume: Option<PathBuf>,
    /// Save a resumable checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 2000)]
    pub checkpoint_every: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The logged points of an earlier session of the run in `dir`, up to step `upto`.
fn earlier_log(dir: &RunDir, upto: u64) -> Vec<LogPoint> {
    let read = |name: &str| std::fs::read_to_string(dir.file(name)).ok();
    let log = read(PROGRESS)
        .and_then(|t| serde_json::from_str::<ProgressFile>(&t).ok())
        .map(|p| p.loss_curve)
        .or_else(|| {
            read(METRICS)
                .and_then(|t| serde_json::from_str::<Metrics>(&t).ok())
                .map(|m| m.loss_curve)
        })
        .unwrap_or_default();
    log.into_iter().filter(|p| p.step <= upto).collect()
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let device = args.device.select()?;
    let (dir, model, resume, mut log) = match &args.resume {
        Some(path) => {
            anyhow::ensure!(
                args.cfg.only_steps(),
                "--resume continues the saved config; only --steps (to extend the run) may be given"
            );
            let dir = RunDir::open(path)?;
            let removed = clean_temp_files(&dir.path);
            if removed > 0 {
                eprintln!("removed {removed} temporary file(s) left by an interrupted write");
            }
            let mut ck = dir.load_checkpoint()?;
            if let Some(steps) = args.cfg.steps {
                anyhow::ensure!(
                    steps >= ck.step,
                    "--steps {steps} is below the {} steps already done in {}",
                    ck.step,
                    dir.path.display()
                );
                let cfg = &mut ck.model.cfg;
                if steps != cfg.steps && cfg.schedule != Schedule::Constant {
                    eprintln!(
                        "note: the {:?} learning-rate schedule depends on `steps`; extending \
                         from {} to {steps} changes the learning rate of the remaining steps",
                        cfg.schedule, cfg.steps
                    );
                }
                cfg.steps = steps;
                cfg.validate()?;
                dir.write_config(cfg)?;
            }
            if ck.step >= ck.model.cfg.steps {
                eprintln!(
                    "{} is already complete ({} steps); pass --steps N to extend it",
                    dir.path.display(),
                    ck.step
                );
                return Ok(0);
            }
            let log = earlier_log(&dir, ck.step);
            (dir, ck.model.clone(), Some(ck), log)
        }
        None => {
            let cfg = args.cfg.build()?;
            let model = Model::<f32>::new(&cfg)?;
            let dir = RunDir::create(args.out.as_ref().expect("clap requires --out"), args.force)?;
            dir.write_config(&cfg)?;
            (dir, model, None, Vec::new())
        }
    };
    let cfg = model.cfg.clone();
    let interrupted = interrupt_flag()?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cfg.steps)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  eta {eta}  {msg}",
        )
        .expect("valid template"),
    );
    bar.set_position(resume.as_ref().map_or(0, |c| c.step));
    let start = Instant::now();
    let naive = cfg.naive_loss(cfg.p);
    let mut last_saved = resume.as_ref().map_or(0, |c| c.step);
    let save_progress = |dir: &RunDir, log: &[LogPoint], step: u64| {
        dir.write_json(
            PROGRESS,
            &ProgressFile {
                steps_done: step,
                loss_curve: log.to_vec(),
            },
        )
    };
    let result = train_model(&device, model, resume.as_ref(), |p, trainer| {
        let mean = p.loss.iter().sum::<f64>() / p.loss.len() as f64;
        bar.set_position(p.step);
        bar.set_message(format!("loss {mean:.3e}  loss/naive {:.4}", mean / naive));
        log.push(LogPoint {
            step: p.step,
            loss: p.loss.to_vec(),
        });
        let stop = interrupted.load(Ordering::SeqCst);
        let due = args.checkpoint_every > 0 && p.step - last_saved >= args.checkpoint_every;
        if due && !stop && p.step < p.steps {
            save_progress(&dir, &log, p.step)?;
            dir.write_checkpoint(&trainer.checkpoint()?)?;
            last_saved = p.step;
        }
        Ok(!stop)
    });
    let trained = match result {
        Ok(t) => t,
        Err(e) => {
            bar.abandon();
            let status = json!({ "status": "failed", "error": e.to_string(), "last_checkpoint_step": last_saved });
            dir.write_json(METRICS, &status)?;
            return Err(e).context(format!(
                "run directory {} keeps the checkpoint of step {last_saved}",
                dir.path.display()
            ));
        }
    };
    let steps_done = trained.checkpoint.step;
    if steps_done < cfg.steps {
        save_progress(&dir, &log, steps_done)?;
        dir.write_checkpoint(&trained.checkpoint)?;
        bar.abandon_with_message("interrupted");
        eprintln!(
            "interrupted at step {steps_done}; resume with `tmcc train --resume {}`",
            dir.path.display()
        );
        return Ok(130);
    }
    dir.write_checkpoint(&trained.checkpoint)?;
    bar.finish_and_clear();
    let eval = eval_model(&device, &trained.checkpoint.model, cfg.eval_samples, None)?;
    let metrics = Metrics {
        steps_done,
        final_train_loss: log.last().map(|l| l.loss.clone()).unwrap_or_default(),
        loss_curve: log,
        eval,
        seconds: start.elapsed().as_secs_f64(),
        device: device.describe(),
    };
    dir.write_json(METRICS, &metrics)?;
    let _ = std::fs::remove_file(dir.file(PROGRESS));
    for e in &metrics.eval {
        outln!(
            "instance {:>3}  seed {:>6}  p {:.4}  loss {:.6e} ± {:.1e}  loss/naive {:.4} ± {:.4}",
            e.instance,
            cfg.instance_seed(e.instance),
            e.p,
            e.loss,
            e.loss_se,
            e.ratio,
            e.ratio_se
        );
    }
    eprintln!("wrote {} in {:.1} s", dir.path.display(), metrics.seconds);
    Ok(0)
}
