//! One training run of `K` instances: train, evaluate on the fixed stream, and collect the
//! numbers a researcher keeps (loss curve, final loss, loss/naive with its standard error).
//!
//! Runs train and evaluate on a [`Device`]: the CPU backend, or a CUDA device (all `K`
//! instances in one launch per operation there). The same config and seed give the
//! same numbers on the same device; the CPU and a GPU agree to rounding.

use serde::{Deserialize, Serialize};
use tmcc_kernels::{Backend, OnBackend};
pub use tmcc_kernels::{Device, DeviceChoice};
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::eval::{evaluate, InstanceEval};
use tmcc_model::fast::FastModel;
use tmcc_model::train::{LogPoint, Trainer};
use tmcc_model::{Error, Model};

/// What a finished (or stopped) run produced.
#[derive(Clone, Debug)]
pub struct Trained {
    pub checkpoint: Checkpoint<f32>,
    pub log: Vec<LogPoint>,
}

/// The metrics file of a run (`metrics.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub steps_done: u64,
    pub loss_curve: Vec<LogPoint>,
    /// Last logged training-batch loss of every instance.
    pub final_train_loss: Vec<f64>,
    pub eval: Vec<InstanceEval>,
    pub seconds: f64,
    /// Where it trained ([`Device::describe`]; empty in files written before it was kept).
    #[serde(default)]
    pub device: String,
}

/// Progress of a run, as reported to an observer.
pub struct Progress<'a> {
    pub step: u64,
    pub steps: u64,
    pub loss: &'a [f64],
}

/// What an observer of a running training can read, on any backend.
pub trait RunState {
    /// The full training state (parameters, Adam moments, step, data-stream positions).
    fn checkpoint(&self) -> Result<Checkpoint<f32>, Error>;
    /// The model with the current parameters.
    fn snapshot(&self) -> Result<Model<f32>, Error>;
}

impl<Bk: Backend<f32>> RunState for Trainer<f32, Bk> {
    fn checkpoint(&self) -> Result<Checkpoint<f32>, Error> {
        Ok(Checkpoint {
            model: Trainer::snapshot(self)?,
            step: self.step,
            moments: Some(self.fast.read_moments()?),
            stream_positions: Some(self.stream_positions()),
        })
    }

    fn snapshot(&self) -> Result<Model<f32>, Error> {
        Trainer::snapshot(self)
    }
}

/// Trains `model` on `device` from the start (or from `resume`), reporting every logged
/// step to `observe`; `observe` returning `false` stops the run after that step.
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

fn train_on<Bk: Backend<f32>>(
    bk: Bk,
    model: Model<f32>,
    resume: Option<&Checkpoint<f32>>,
    mut observe: impl FnMut(&Progress, &dyn RunState) -> Result<bool, Error>,
) -> Result<Trained, Error> {
    let mut trainer = match resume {
        Some(ck) => {
            let (m, v) = ck
                .moments
                .as_ref()
                .ok_or_else(|| Error::Shape("checkpoint has no optimizer state".into()))?;
            let pos = ck
                .stream_positions
                .as_ref()
                .ok_or_else(|| Error::Shape("checkpoint has no data-stream positions".into()))?;
            Trainer::resume(bk, model, (m, v), ck.step, pos)?
        }
        None => Trainer::new(bk, model)?,
    };
    let steps = trainer.model.cfg.steps;
    let log = trainer.run(None, |t, point| {
        observe(
            &Progress {
                step: point.step,
                steps,
                loss: &point.loss,
            },
            t,
        )
    })?;
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
        evaluate(&mut FastModel::new(bk, m)?, &m.cfg, self.samples, self.ps)
    }
}
