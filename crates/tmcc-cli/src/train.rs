//! `tmcc train`: train, checkpoint periodically, evaluate, write the run directory.
//! Ctrl-C stops after the current step and saves a resumable checkpoint; a NaN or
//! infinite loss stops with an error and keeps the last good checkpoint.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tmcc_experiments::run::{checkpoint_of, eval_model, train as train_model, Metrics};
use tmcc_experiments::rundir::{RunDir, METRICS};
use tmcc_model::Model;

use crate::config_args::ConfigArgs;

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
    /// Continue the interrupted run in this directory.
    #[arg(long, conflicts_with_all = ["out", "force"])]
    pub resume: Option<PathBuf>,
    /// Save a resumable checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 2000)]
    pub checkpoint_every: u64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let (dir, model, resume) = match &args.resume {
        Some(path) => {
            let dir = RunDir::open(path)?;
            let ck = dir.load_checkpoint()?;
            (dir, ck.model.clone(), Some(ck))
        }
        None => {
            let cfg = args.cfg.build()?;
            let model = Model::<f32>::new(&cfg)?;
            let dir = RunDir::create(args.out.as_ref().expect("clap requires --out"), args.force)?;
            dir.write_config(&cfg)?;
            (dir, model, None)
        }
    };
    let cfg = model.cfg.clone();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
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
    let result = train_model(model, resume.as_ref(), |p, trainer| {
        let mean = p.loss.iter().sum::<f64>() / p.loss.len() as f64;
        bar.set_position(p.step);
        bar.set_message(format!("loss {mean:.3e}  loss/naive {:.4}", mean / naive));
        if args.checkpoint_every > 0 && p.step - last_saved >= args.checkpoint_every {
            dir.write_checkpoint(&checkpoint_of(trainer)?)?;
            last_saved = p.step;
        }
        Ok(!interrupted.load(Ordering::SeqCst))
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
    dir.write_checkpoint(&trained.checkpoint)?;
    let steps_done = trained.checkpoint.step;
    if steps_done < cfg.steps {
        bar.abandon_with_message("interrupted");
        eprintln!(
            "interrupted at step {steps_done}; resume with `tmcc train --resume {}`",
            dir.path.display()
        );
        return Ok(130);
    }
    bar.finish_and_clear();
    let eval = eval_model(&trained.checkpoint.model, cfg.eval_samples, None)?;
    let metrics = Metrics {
        steps_done,
        final_train_loss: trained.log.last().map(|l| l.loss.clone()).unwrap_or_default(),
        loss_curve: trained.log,
        eval,
        seconds: start.elapsed().as_secs_f64(),
    };
    dir.write_json(METRICS, &metrics)?;
    for e in &metrics.eval {
        println!(
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
