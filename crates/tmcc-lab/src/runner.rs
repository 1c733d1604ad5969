//! The runner: one training run of `K` instances on a [`Device`], from the start or from a
//! checkpoint, watched by an [`Observer`]; then the evaluation on the fixed stream and the
//! numbers a researcher keeps ([`Metrics`]: loss curve, final loss, loss/naive with its
//! standard error). `tmcc train` and `tmcc sweep` run through [`run`], and so can the
//! reproduction ([`ProgressLines`], [`Outcome::finished`]).
//!
//! With a [`RunDir`], [`run`] also keeps the directory up to date: a resumable checkpoint
//! with `progress.json` every `checkpoint_every` steps and when the observer stops the run,
//! the failure status when training fails, and at the end the checkpoint and
//! `metrics.json`.
//!
//! **ETA.** At a logged step `s` of a session that began at step `s0` after `t` seconds,
//! the remaining time at the session's pace is `(S − s)·t/(s − s0)` for `S` steps
//! ([`Pace`]).
//!
//! The same config and seed give the same numbers on the same device; the CPU and a GPU
//! agree to rounding (all `K` instances run in one launch per operation there).

use std::time::{Duration, Instant};

use tmcc_kernels::{Backend, OnBackend};
pub use tmcc_kernels::{Device, DeviceChoice};
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::eval::{evaluate, InstanceEval};
use tmcc_model::fast::FastModel;
use tmcc_model::train::{LogPoint, Trainer};
use tmcc_model::Model;

use crate::rundir::{Metrics, RunDir};
use crate::{Error, WithContext};

/// What a finished (or stopped) training produced.
#[derive(Clone, Debug)]
pub struct Trained {
    pub checkpoint: Checkpoint<f32>,
    pub log: Vec<LogPoint>,
}

/// Progress of a run at a logged step.
pub struct Progress<'a> {
    /// Steps done (of the whole run, earlier sessions included).
    pub step: u64,
    /// Steps of the whole run.
    pub steps: u64,
    /// The training-batch loss of every instance at `step`.
    pub loss: &'a [f64],
    /// Seconds left at this session's pace ([`Pace`]).
    pub eta_s: f64,
}

impl Progress<'_> {
    /// The loss averaged over the instances.
    pub fn mean_loss(&self) -> f64 {
        self.loss.iter().sum::<f64>() / self.loss.len() as f64
    }
}

/// What an observer of a running training can read, on any backend.
pub trait RunState {
    /// The full training state (parameters, Adam moments, step, data-stream positions).
    fn checkpoint(&self) -> Result<Checkpoint<f32>, tmcc_model::Error>;
    /// The model with the current parameters.
    fn snapshot(&self) -> Result<Model<f32>, tmcc_model::Error>;
}

impl<Bk: Backend<f32>> RunState for Trainer<f32, Bk> {
    fn checkpoint(&self) -> Result<Checkpoint<f32>, tmcc_model::Error> {
        Ok(Checkpoint {
            model: Trainer::snapshot(self)?,
            step: self.step,
            moments: Some(self.read_moments()?),
            stream_positions: Some(self.stream_positions()),
        })
    }

    fn snapshot(&self) -> Result<Model<f32>, tmcc_model::Error> {
        Trainer::snapshot(self)
    }
}

/// Watches a run: every method has a default that does nothing.
pub trait Observer {
    /// At every logged step, with the training state (read it only when needed: a
    /// snapshot copies the parameters off the device).
    fn on_log(&mut self, _progress: &Progress, _state: &dyn RunState) -> Result<(), Error> {
        Ok(())
    }
    /// Asked after every logged step: `true` stops the run there (e.g. on Ctrl-C).
    fn stop(&self) -> bool {
        false
    }
    /// Training has finished (not stopped) and the evaluation begins.
    fn evaluating(&mut self) {}
}

/// Where a run starts and what it keeps on disk.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions<'a> {
    /// Continue from this checkpoint (its Adam moments, step and data-stream positions).
    pub resume: Option<&'a Checkpoint<f32>>,
    /// The run directory to keep up to date; a resume continues its loss curve.
    pub dir: Option<&'a RunDir>,
    /// With `dir`: save a resumable checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Why the device was chosen when `--device auto` fell back to the CPU (kept in
    /// `metrics.json`, whether or not it was shown).
    pub device_note: Option<&'a str>,
}

/// Checks the memory estimate of training and evaluating `cfg` on `device`
/// ([`tmcc_model::memory`]) against the memory available (host, and a GPU's free memory);
/// the error names the field that drives the size and gives both numbers. Every run of
/// [`run`] passes here before it allocates; callers that build the model first call it
/// before they do.
pub fn check_memory(device: &Device, cfg: &tmcc_model::Config) -> Result<(), Error> {
    use tmcc_model::memory::{check, host_available, Placement};
    let placement = match device {
        Device::Cpu => Placement::cpu_here(),
        Device::Cuda(_) => Placement::device(),
    };
    let free = device.free_memory().map(|b| b as f64);
    Ok(check(cfg, placement, host_available(), free)?)
}

/// A trained and evaluated run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub checkpoint: Checkpoint<f32>,
    pub metrics: Metrics,
}

/// How [`run`] ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Finished(Finished),
    /// The observer stopped the run; `log` is the whole loss curve so far.
    Stopped {
        checkpoint: Checkpoint<f32>,
        log: Vec<LogPoint>,
    },
}

impl Outcome {
    /// The finished run; an error if the observer stopped it (for callers that never stop).
    pub fn finished(self) -> Result<Finished, Error> {
        match self {
            Outcome::Finished(done) => Ok(done),
            Outcome::Stopped { checkpoint, .. } => Err(Error::Other(format!(
                "the run stopped at step {} of {}",
                checkpoint.step, checkpoint.model.cfg.steps
            ))),
        }
    }
}

/// Trains `model` on `device` (from `opts.resume` if given), reporting to `observer`,
/// then evaluates every instance at its training `p` on the config's `eval_samples`
/// samples of the evaluation stream. A training error leaves the directory with its last checkpoint and
/// the failure status, and says so: `run directory DIR keeps the checkpoint of step N: …`.
pub fn run(
    device: &Device,
    model: Model<f32>,
    opts: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<Outcome, Error> {
    check_memory(device, &model.cfg)?;
    let start = Instant::now();
    let mut log = match (opts.dir, opts.resume) {
        (Some(dir), Some(ck)) => dir.earlier_log(ck.step),
        _ => Vec::new(),
    };
    let mut last_saved = opts.resume.map_or(0, |c| c.step);
    let every = opts.checkpoint_every;
    let trained = train(device, model, opts.resume, |p, state| {
        observer.on_log(p, state)?;
        log.push(LogPoint {
            step: p.step,
            loss: p.loss.to_vec(),
        });
        let stop = observer.stop();
        if let Some(dir) = opts.dir {
            if every > 0 && p.step - last_saved >= every && !stop && p.step < p.steps {
                dir.write_progress(p.step, &log)?;
                dir.write_checkpoint(&state.checkpoint()?)?;
                last_saved = p.step;
            }
        }
        Ok(!stop)
    });
    let trained = match (trained, opts.dir) {
        (Ok(t), _) => t,
        (Err(e), None) => return Err(e),
        (Err(e), Some(dir)) => {
            dir.write_failure(&e.to_string(), last_saved)?;
            return Err(e).with_context(|| {
                format!(
                    "run directory {} keeps the checkpoint of step {last_saved}",
                    dir.path.display()
                )
            });
        }
    };
    let checkpoint = trained.checkpoint;
    let cfg = &checkpoint.model.cfg;
    let steps_done = checkpoint.step;
    if steps_done < cfg.steps {
        if let Some(dir) = opts.dir {
            dir.write_progress(steps_done, &log)?;
            dir.write_checkpoint(&checkpoint)?;
        }
        return Ok(Outcome::Stopped { checkpoint, log });
    }
    if let Some(dir) = opts.dir {
        dir.write_checkpoint(&checkpoint)?;
    }
    observer.evaluating();
    let eval = eval_model(device, &checkpoint.model, cfg.eval_samples, None)?;
    let metrics = Metrics {
        steps_done,
        final_train_loss: log.last().map(|l| l.loss.clone()).unwrap_or_default(),
        loss_curve: log,
        eval,
        seconds: start.elapsed().as_secs_f64(),
        device: device.describe(),
        device_note: opts.device_note.map(str::to_string),
        learned_sigma: if cfg.learn_sigma {
            (0..cfg.instances)
                .map(|k| checkpoint.model.sigma(k))
                .collect()
        } else {
            Vec::new()
        },
    };
    if let Some(dir) = opts.dir {
        dir.write_metrics(&metrics)?;
        dir.remove_progress();
    }
    Ok(Outcome::Finished(Finished {
        checkpoint,
        metrics,
    }))
}

/// Trains `model` on `device` from the start (or from `resume`), reporting every logged
/// step to `observe`; `observe` returning `false` stops the run after that step. The
/// training step of [`run`], without evaluation or files.
pub fn train(
    device: &Device,
    model: Model<f32>,
    resume: Option<&Checkpoint<f32>>,
    observe: impl FnMut(&Progress, &dyn RunState) -> Result<bool, Error>,
) -> Result<Trained, Error> {
    device.run(TrainOn {
        model,
        resume,
        observe,
    })
}

/// [`train`] on one backend.
struct TrainOn<'a, O> {
    model: Model<f32>,
    resume: Option<&'a Checkpoint<f32>>,
    observe: O,
}

impl<O: FnMut(&Progress, &dyn RunState) -> Result<bool, Error>> OnBackend for TrainOn<'_, O> {
    type Output = Result<Trained, Error>;
    fn run<Bk: Backend<f32> + Clone>(self, bk: Bk) -> Self::Output {
        train_on(bk, self.model, self.resume, self.observe)
    }
}

/// The Adam moments `(m, v)` a resume continues from.
type Moments<'a> = (&'a [f32], &'a [f32]);

/// The optimizer state and data-stream positions of `ck`, which a resume needs; an
/// error naming what is missing.
pub fn resumable(ck: &Checkpoint<f32>) -> Result<(Moments<'_>, &[u128]), Error> {
    let missing = |what| Error::MissingState { what };
    let (m, v) = ck
        .moments
        .as_ref()
        .ok_or_else(|| missing("optimizer state"))?;
    let pos = ck
        .stream_positions
        .as_ref()
        .ok_or_else(|| missing("data-stream positions"))?;
    Ok(((m, v), pos))
}

fn train_on<Bk: Backend<f32>>(
    bk: Bk,
    model: Model<f32>,
    resume: Option<&Checkpoint<f32>>,
    mut observe: impl FnMut(&Progress, &dyn RunState) -> Result<bool, Error>,
) -> Result<Trained, Error> {
    let mut trainer = match resume {
        Some(ck) => {
            let (moments, pos) = resumable(ck)?;
            Trainer::resume(bk, model, moments, ck.step, pos)?
        }
        None => Trainer::new(bk, model)?,
    };
    let steps = trainer.model.cfg.steps;
    let pace = Pace::new(steps.saturating_sub(trainer.step) as f64);
    let first = trainer.step;
    // The observer's error type is this crate's; the trainer's callback returns the
    // model's, so an observer error stops the run and is returned after it.
    let mut failed = None;
    let log = trainer.run(None, |t, point| {
        let progress = Progress {
            step: point.step,
            steps,
            loss: &point.loss,
            eta_s: pace.eta_s((point.step - first) as f64),
        };
        observe(&progress, t).or_else(|e| {
            failed = Some(e);
            Ok(false)
        })
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(Trained {
        checkpoint: RunState::checkpoint(&trainer)?,
        log,
    })
}

/// Evaluates every instance of `model` on `device` with `samples` samples of the
/// evaluation stream at `ps` (default: each instance's training `p`).
pub fn eval_model(
    device: &Device,
    model: &Model<f32>,
    samples: usize,
    ps: Option<&[f64]>,
) -> Result<Vec<InstanceEval>, Error> {
    device.run(EvalOn { model, samples, ps })
}

/// [`eval_model`] on one backend.
struct EvalOn<'a> {
    model: &'a Model<f32>,
    samples: usize,
    ps: Option<&'a [f64]>,
}

impl OnBackend for EvalOn<'_> {
    type Output = Result<Vec<InstanceEval>, Error>;
    fn run<Bk: Backend<f32> + Clone>(self, bk: Bk) -> Self::Output {
        let m = self.model;
        if tmcc_model::fast::no_fast_path(&m.cfg).is_some() {
            return Ok(tmcc_model::dense::evaluate(m, self.samples, self.ps)?);
        }
        Ok(evaluate(
            &mut FastModel::new(bk, m)?,
            &m.cfg,
            self.samples,
            self.ps,
        )?)
    }
}

/// The pace of some work measured from its start: the remaining time of `total` units
/// when `done` are done is `(total − done)·elapsed/done`.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    start: Instant,
    total: f64,
}

impl Pace {
    pub fn new(total: f64) -> Self {
        Self {
            start: Instant::now(),
            total,
        }
    }

    /// Seconds since the start.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Seconds left when `done` units of the total are done.
    pub fn eta_s(&self, done: f64) -> f64 {
        let rate = done / self.elapsed_s().max(1e-9);
        (self.total - done) / rate.max(1e-9)
    }
}

/// True about once per period: for progress lines every few seconds.
#[derive(Clone, Copy, Debug)]
pub struct Every {
    period: Duration,
    last: Instant,
}

impl Every {
    /// The first `due` is one period from now.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: Instant::now(),
        }
    }

    /// Whether a period has passed since the last time this returned `true`.
    pub fn due(&mut self) -> bool {
        let due = self.last.elapsed() >= self.period;
        if due {
            self.last = Instant::now();
        }
        due
    }
}

/// The period of progress lines.
pub const PROGRESS_PERIOD: Duration = Duration::from_secs(5);

/// Seconds for a log line: `m` minutes and seconds from 90 s on, else seconds with
/// `decimals` decimals.
pub fn fmt_secs(s: f64, decimals: usize) -> String {
    if s >= 90.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.decimals$}s")
    }
}

/// An observer that writes `LABEL: step s/S loss L eta E` through `log` about every
/// [`PROGRESS_PERIOD`], and calls `at_log` at every logged step (e.g. to analyse the
/// model while it trains). For the reproduction's runs.
pub struct ProgressLines<'a, F> {
    label: &'a str,
    log: &'a dyn Fn(&str),
    at_log: F,
    every: Every,
}

impl<'a, F> ProgressLines<'a, F>
where
    F: FnMut(&Progress, &dyn RunState) -> Result<(), Error>,
{
    pub fn new(label: &'a str, log: &'a dyn Fn(&str), at_log: F) -> Self {
        Self {
            label,
            log,
            at_log,
            every: Every::new(PROGRESS_PERIOD),
        }
    }
}

impl<F> Observer for ProgressLines<'_, F>
where
    F: FnMut(&Progress, &dyn RunState) -> Result<(), Error>,
{
    fn on_log(&mut self, p: &Progress, state: &dyn RunState) -> Result<(), Error> {
        (self.at_log)(p, state)?;
        if self.every.due() {
            (self.log)(&format!(
                "{}: step {}/{} loss {:.3e} eta {}",
                self.label,
                p.step,
                p.steps,
                p.mean_loss(),
                fmt_secs(p.eta_s, 0)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmcc_model::Config;

    fn tiny(steps: u64) -> Model<f32> {
        let cfg = Config {
            n_feat: 8,
            n_hidden: 4,
            d_emb: 16,
            batch_size: 32,
            eval_samples: 500,
            p: 0.1,
            steps,
            log_every: 10,
            instances: 2,
            ..Config::default()
        };
        Model::new(&cfg).unwrap()
    }

    /// Stops after step `at`.
    struct StopAt(u64, u64);
    impl Observer for StopAt {
        fn on_log(&mut self, p: &Progress, _: &dyn RunState) -> Result<(), Error> {
            self.1 = p.step;
            Ok(())
        }
        fn stop(&self) -> bool {
            self.1 >= self.0
        }
    }

    #[test]
    fn a_run_reports_every_logged_step_and_ends_evaluated() {
        let mut steps = Vec::new();
        let quiet = |_: &str| {};
        let mut watch = ProgressLines::new("t", &quiet, |p: &Progress, s: &dyn RunState| {
            assert_eq!(s.snapshot()?.cfg.steps, p.steps);
            assert!(p.eta_s.is_finite() && p.eta_s >= 0.0);
            steps.push(p.step);
            Ok(())
        });
        let done = run(&Device::Cpu, tiny(30), &RunOptions::default(), &mut watch)
            .unwrap()
            .finished()
            .unwrap();
        assert_eq!(steps, [1, 10, 20, 30]);
        let m = &done.metrics;
        assert_eq!((m.steps_done, done.checkpoint.step), (30, 30));
        let logged: Vec<u64> = m.loss_curve.iter().map(|l| l.step).collect();
        assert_eq!(logged, steps);
        assert_eq!(m.final_train_loss, m.loss_curve[3].loss);
        assert_eq!(m.eval.len(), 2);
    }

    #[test]
    fn a_stopped_run_resumes_into_its_directory_to_the_uninterrupted_weights() {
        let tmp = std::env::temp_dir().join(format!("tmcc-runner-test-{}", std::process::id()));
        let dir = RunDir::create(&tmp, true).unwrap();
        let opts = RunOptions {
            dir: Some(&dir),
            checkpoint_every: 10,
            ..RunOptions::default()
        };
        let stopped = run(&Device::Cpu, tiny(40), &opts, &mut StopAt(20, 0)).unwrap();
        let Outcome::Stopped { checkpoint, log } = stopped else {
            panic!("the observer stopped the run")
        };
        assert_eq!(checkpoint.step, 20);
        assert_eq!(dir.load_checkpoint().unwrap().step, 20);
        assert_eq!(dir.earlier_log(20).len(), log.len());
        assert!(run(
            &Device::Cpu,
            tiny(40),
            &RunOptions::default(),
            &mut StopAt(20, 0)
        )
        .unwrap()
        .finished()
        .is_err());
        let resume = dir.load_checkpoint().unwrap();
        let opts = RunOptions {
            resume: Some(&resume),
            ..opts
        };
        let resumed = run(
            &Device::Cpu,
            resume.model.clone(),
            &opts,
            &mut StopAt(99, 0),
        )
        .unwrap()
        .finished()
        .unwrap();
        let straight = run(
            &Device::Cpu,
            tiny(40),
            &RunOptions::default(),
            &mut StopAt(99, 0),
        )
        .unwrap()
        .finished()
        .unwrap();
        assert_eq!(
            resumed.checkpoint.model.params,
            straight.checkpoint.model.params
        );
        assert_eq!(resumed.metrics.loss_curve, straight.metrics.loss_curve);
        assert!(!dir.file(crate::rundir::PROGRESS).exists());
        // metrics.json holds the same curve (serde_json reads floats back to within an ulp).
        let read: Vec<u64> = dir.loss_curve().unwrap().iter().map(|l| l.step).collect();
        assert_eq!(read, [1, 10, 20, 30, 40]);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
