//! One training run of `K` instances: train, evaluate on the fixed stream, and collect the
//! numbers a researcher keeps (loss curve, final loss, loss/naive with its standard error).
//!
//! Runs train and evaluate on a [`Device`]: the CPU backend, or (cargo feature `cuda`) a
//! CUDA device, all `K` instances in one shard there. The same config and seed give the
//! same numbers on the same device; the CPU and a GPU agree to rounding.

use serde::{Deserialize, Serialize};
use tmcc_kernels::cpu::Cpu;
#[cfg(feature = "cuda")]
use tmcc_kernels::cuda::Cuda;
pub use tmcc_kernels::DeviceChoice;
use tmcc_kernels::{Backend, DeviceKind};
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

/// Where runs train and evaluate.
#[derive(Clone, Debug, Default)]
pub enum Device {
    #[default]
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(Cuda),
}

impl Device {
    /// Resolves `--device`: `auto` gives CUDA where a device can be used, else the CPU with
    /// a line saying why (for the caller to log); `cuda` without a usable device is `Err`
    /// with the reason, in one line.
    pub fn select(choice: DeviceChoice) -> Result<(Self, Option<String>), String> {
        let (kind, note) = choice.resolve()?;
        match kind {
            DeviceKind::Cpu => Ok((Self::Cpu, note)),
            #[cfg(feature = "cuda")]
            DeviceKind::Cuda => Cuda::new(0)
                .map(|c| (Self::Cuda(c), note))
                .map_err(|e| format!("--device {choice}: {e}")),
            #[cfg(not(feature = "cuda"))]
            DeviceKind::Cuda => unreachable!("CUDA resolves only with the `cuda` feature"),
        }
    }

    /// One line naming the device, for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Cpu => format!("cpu ({} rayon threads)", rayon::current_num_threads()),
            #[cfg(feature = "cuda")]
            Self::Cuda(c) => format!("cuda: {}", c.describe()),
        }
    }
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
    match device {
        Device::Cpu => train_on(Cpu, model, resume, observe),
        #[cfg(feature = "cuda")]
        Device::Cuda(c) => train_on(c.clone(), model, resume, observe),
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
    match device {
        Device::Cpu => evaluate(&mut FastModel::new(Cpu, model)?, &model.cfg, samples, ps),
        #[cfg(feature = "cuda")]
        Device::Cuda(c) => evaluate(
            &mut FastModel::new(c.clone(), model)?,
            &model.cfg,
            samples,
            ps,
        ),
    }
}
