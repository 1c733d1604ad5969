//! `tmcc train`: train, checkpoint periodically, evaluate, write the run directory (the
//! runner, `tmcc_lab::runner::run`, with a progress bar on stderr).
//!
//! Ctrl-C stops after the current step and saves a resumable checkpoint (exit 130); a NaN
//! or infinite loss stops with an error and keeps the last good checkpoint.
//! `tmcc train --resume DIR` continues from the checkpoint (optimizer state, step and
//! data-stream positions), so the run ends with exactly the weights of an uninterrupted
//! one; `--resume DIR --steps N` extends a run to `N` steps (with a constant schedule this
//! equals a run trained for `N` steps from the start).
//!
//! Files (`tmcc_lab::rundir`): `config.toml`, `checkpoint.safetensors`, `progress.json`
//! (the loss curve so far, written with each checkpoint and removed when the run
//! finishes) and, at the end, `metrics.json`. A process killed mid-write can leave a
//! temporary file `.NAME.tmp-PID`, which `--resume` removes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tmcc_lab::rundir::RunDir;
use tmcc_lab::runner::{
    check_memory, resumable, run as run_training, Observer, Outcome, Progress, RunOptions, RunState,
};
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::config::Schedule;
use tmcc_model::{Config, Model};

use crate::common::interrupt_flag;
use crate::config_args::ConfigArgs;
use crate::device_arg::DeviceArg;

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

/// The progress bar, as an observer of the run; Ctrl-C stops it.
struct Bar {
    bar: ProgressBar,
    naive: f64,
    interrupted: Arc<AtomicBool>,
}

impl Bar {
    fn new(cfg: &Config, from_step: u64, quiet: bool) -> anyhow::Result<Self> {
        let bar = if quiet {
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
        bar.set_position(from_step);
        Ok(Self {
            bar,
            naive: cfg.naive_loss(cfg.p),
            interrupted: interrupt_flag()?,
        })
    }
}

impl Observer for Bar {
    fn on_log(&mut self, p: &Progress, _: &dyn RunState) -> Result<(), tmcc_lab::Error> {
        let mean = p.mean_loss();
        self.bar.set_position(p.step);
        self.bar.set_message(format!(
            "loss {mean:.3e}  loss/naive {:.4}",
            mean / self.naive
        ));
        Ok(())
    }

    fn stop(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn evaluating(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The run directory to resume and its checkpoint (with `--steps` applied, and saved to
/// `config.toml`); `None` when the run is already complete.
fn open_resume(path: &Path, args: &Args) -> anyhow::Result<Option<(RunDir, Checkpoint<f32>)>> {
    anyhow::ensure!(
        args.cfg.only_steps(),
        "--resume continues the saved config; only --steps (to extend the run) may be given"
    );
    let dir = RunDir::open(path)?;
    let removed = dir.clean_temp_files();
    if removed > 0 {
        eprintln!("removed {removed} temporary file(s) left by an interrupted write");
    }
    let mut ck = dir.load_checkpoint()?;
    resumable(&ck)?;
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
        return Ok(None);
    }
    Ok(Some((dir, ck)))
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    // The config is checked before the device is probed, and the run's memory before
    // anything is allocated or written.
    let cfg = match &args.resume {
        Some(_) => None,
        None => Some(args.cfg.build()?),
    };
    let (device, device_note) = args.device.select_noted()?;
    let (dir, model, resume) = match &args.resume {
        Some(path) => match open_resume(path, &args)? {
            Some((dir, ck)) => (dir, ck.model.clone(), Some(ck)),
            None => return Ok(0),
        },
        None => {
            let cfg = cfg.expect("built above");
            check_memory(&device, &cfg)?;
            let model = Model::<f32>::new(&cfg)?;
            let dir = RunDir::create(args.out.as_ref().expect("clap requires --out"), args.force)?;
            dir.write_config(&cfg)?;
            (dir, model, None)
        }
    };
    let cfg = model.cfg.clone();
    if let Some(why) = tmcc_model::fast::no_fast_path(&cfg) {
        eprintln!("note: {why}; training and evaluating on the dense reference path (slow: it forms the B×D products)");
    }
    let mut bar = Bar::new(&cfg, resume.as_ref().map_or(0, |c| c.step), args.quiet)?;
    let opts = RunOptions {
        resume: resume.as_ref(),
        dir: Some(&dir),
        checkpoint_every: args.checkpoint_every,
        device_note: device_note.as_deref(),
    };
    let done = match run_training(&device, model, &opts, &mut bar) {
        Ok(Outcome::Finished(done)) => done,
        Ok(Outcome::Stopped { checkpoint, .. }) => {
            bar.bar.abandon_with_message("interrupted");
            eprintln!(
                "interrupted at step {}; resume with `tmcc train --resume {}`",
                checkpoint.step,
                dir.path.display()
            );
            return Ok(130);
        }
        Err(e) => {
            bar.bar.abandon();
            return Err(e.into());
        }
    };
    for e in &done.metrics.eval {
        // A learned σ is part of the result (its start is in config.toml).
        let sigma = match done.metrics.learned_sigma.get(e.instance) {
            Some(s) => format!("  learned σ {s:.5}"),
            None => String::new(),
        };
        outln!(
            "instance {:>3}  seed {:>6}  p {:.4}  loss {:.6e} ± {:.1e}  loss/naive {:.4} ± {:.4}{sigma}",
            e.instance,
            cfg.instance_seed(e.instance),
            e.p,
            e.loss,
            e.loss_se,
            e.ratio,
            e.ratio_se
        );
    }
    eprintln!(
        "wrote {} in {:.1} s",
        dir.path.display(),
        done.metrics.seconds
    );
    Ok(0)
}
