//! One training run of `K` instances: train, evaluate on the fixed stream, and collect the
//! numbers a researcher keeps (loss curve, final loss, loss/naive with its standard error).

use serde::{Deserialize, Serialize};
use tmcc_kernels::cpu::Cpu;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::eval::{evaluate, InstanceEval};
use tmcc_model::fast::FastModel;
use tmcc_model::train::{LogPoint, Trainer};
use tmcc_model::{Config, Error, Model};

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
}

/// Progress of a run, as reported to an observer.
pub struct Progress<'a> {
    pub step: u64,
    pub steps: u64,
    pub loss: &'a [f64],
}

/// Trains `model` on the CPU from the start (or from `resume`), reporting every logged step
/// to `observe`; `observe` returning `false` stops the run after that step.
pub fn train(
    model: Model<f32>,
    resume: Option<&Checkpoint<f32>>,
    mut observe: impl FnMut(&Progress, &Trainer<f32, Cpu>) -> Result<bool, Error>,
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
            Trainer::resume(Cpu, model, (m, v), ck.step, pos)?
        }
        None => Trainer::new(Cpu, model)?,
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
        checkpoint: checkpoint_of(&trainer)?,
        log,
    })
}

/// The full training state of a trainer.
pub fn checkpoint_of(t: &Trainer<f32, Cpu>) -> Result<Checkpoint<f32>, Error> {
    Ok(Checkpoint {
        model: t.snapshot()?,
        step: t.step,
        moments: Some(t.fast.read_moments()?),
        stream_positions: Some(t.stream_positions()),
    })
}

/// Evaluates every instance of `model` on `samples` samples of the evaluation stream at
/// `ps` (default: each instance's training `p`).
pub fn eval_model(
    model: &Model<f32>,
    samples: usize,
    ps: Option<&[f64]>,
) -> Result<Vec<InstanceEval>, Error> {
    let mut fast = FastModel::new(Cpu, model)?;
    evaluate(&mut fast, &model.cfg, samples, ps)
}

/// Trains `cfg` from scratch and evaluates it with the config's evaluation settings.
pub fn train_and_eval(
    cfg: &Config,
    observe: impl FnMut(&Progress, &Trainer<f32, Cpu>) -> Result<bool, Error>,
) -> Result<(Trained, Vec<InstanceEval>), Error> {
    let trained = train(Model::new(cfg)?, None, observe)?;
    let eval = eval_model(&trained.checkpoint.model, cfg.eval_samples, None)?;
    Ok((trained, eval))
}
