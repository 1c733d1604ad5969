//! The training loop: a fresh sparse batch every step for every instance (each from its
//! own data stream), forward, backward, one Adam/AdamW update. The loss is read back after
//! the first step, after every `log_every` completed steps and after the last; a NaN or
//! infinite loss stops training with
//! [`Error::NonFinite`] before anything is saved from the bad state.
//!
//! A config the fast path covers trains on it; any other (`crate::fast::no_fast_path`:
//! the residual-space loss, a learned `σ`) trains on the dense reference path
//! ([`crate::dense`]) with the same data streams and the same Adam.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tmcc_kernels::Backend;

use crate::batch::{HostBatch, Sampler};
use crate::data::DataSpec;
use crate::dense::DenseState;
use crate::fast::{no_fast_path, FastModel, WorkspacePool};
use crate::init::{rng, Stream};
use crate::model::{Float, Model};
use crate::optim::adam_spec;
use crate::Error;

/// The batch loss of every instance at one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogPoint {
    /// Steps completed when the loss was measured (the loss is of the batch of that step).
    pub step: u64,
    pub loss: Vec<f64>,
}

/// Where each instance's data stream stands, for an exact resume.
pub fn stream_positions(rngs: &[ChaCha8Rng]) -> Vec<u128> {
    rngs.iter().map(|r| r.get_word_pos()).collect()
}

/// Where the parameters live and which path computes the steps.
enum Engine<T: Float, Bk: Backend<T>> {
    /// The fast path on the backend.
    Fast {
        fast: FastModel<T, Bk>,
        pool: WorkspacePool<T, Bk>,
    },
    /// The dense reference path on the host (the parameters stay in `Trainer::model`).
    Dense(DenseState<T>),
}

/// A model being trained on a backend.
pub struct Trainer<T: Float, Bk: Backend<T>> {
    /// The configuration and fixed tensors; on the fast path `params` is empty (the
    /// parameters live on the backend: [`Trainer::snapshot`] reads them back).
    pub model: Model<T>,
    engine: Engine<T, Bk>,
    sampler: Sampler<T>,
    batch: HostBatch<T>,
    /// The next step's batch, drawn while the current step computes.
    next: HostBatch<T>,
    ahead: bool,
    /// The data streams' positions before `next` was drawn (what a resume continues from).
    positions: Vec<u128>,
    losses: Vec<f64>,
    /// Steps completed.
    pub step: u64,
}

/// Instances per state of a trainer on a backend that runs instances side by side (the
/// CPU): one, so that each instance's step runs whole on one thread with its working set
/// in cache (see [`crate::fast`]).
pub const PARALLEL_PER_STATE: usize = 1;

impl<T: Float, Bk: Backend<T>> Trainer<T, Bk> {
    /// Starts training `model` from step 0.
    pub fn new(bk: Bk, mut model: Model<T>) -> Result<Self, Error> {
        let cfg = &model.cfg;
        let rngs = (0..cfg.instances)
            .map(|k| rng(cfg.instance_seed(k), Stream::Data))
            .collect();
        let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
        let k = cfg.instances;
        // On the CPU, instances train side by side, one state each; a device backend
        // takes all instances in one state (one launch per operation).
        let per_state = if bk.parallel_instances() {
            PARALLEL_PER_STATE
        } else {
            k
        };
        let engine = if no_fast_path(cfg).is_some() {
            Engine::Dense(DenseState::new(&model))
        } else {
            let fast = FastModel::new_in_states(bk, &model, per_state, false)?;
            let pool = fast.workspace_pool(cfg.batch_size)?;
            model.params = Vec::new();
            Engine::Fast { fast, pool }
        };
        Ok(Self {
            sampler: Sampler::new(rngs, ps).with_data(DataSpec::of(cfg)),
            batch: HostBatch::default(),
            next: HostBatch::default(),
            ahead: false,
            positions: Vec::with_capacity(k),
            losses: vec![0.0; k],
            engine,
            model,
            step: 0,
        })
    }

    /// Continues from a saved state: Adam moments, steps done and data-stream positions.
    pub fn resume(
        bk: Bk,
        model: Model<T>,
        moments: (&[T], &[T]),
        step: u64,
        positions: &[u128],
    ) -> Result<Self, Error> {
        if positions.len() != model.instances() {
            return Err(Error::Shape(format!(
                "{} stream positions for {} instances",
                positions.len(),
                model.instances()
            )));
        }
        let params = model.params.clone();
        let mut t = Self::new(bk, model)?;
        match &mut t.engine {
            Engine::Fast { fast, .. } => fast.write_state(&params, moments.0, moments.1)?,
            Engine::Dense(state) => {
                if moments.0.len() != params.len() || moments.1.len() != params.len() {
                    return Err(Error::Shape(format!(
                        "state must have {} elements per tensor",
                        params.len()
                    )));
                }
                state.adam_m = moments.0.to_vec();
                state.adam_v = moments.1.to_vec();
            }
        }
        for (r, &pos) in t.sampler.rngs.iter_mut().zip(positions) {
            r.set_word_pos(pos);
        }
        t.step = step;
        Ok(t)
    }

    /// Where each instance's data stream stands: the batch of the next step is drawn
    /// from here (a batch drawn ahead does not count).
    pub fn stream_positions(&self) -> Vec<u128> {
        if self.ahead {
            self.positions.clone()
        } else {
            stream_positions(&self.sampler.rngs)
        }
    }

    /// One training step; with `want_loss`, returns every instance's batch loss.
    ///
    /// The next step's batch is drawn ahead (on the CPU, by a second thread while the step
    /// computes). A step that fails leaves the drawn batch for the next call.
    pub fn step(&mut self, want_loss: bool) -> Result<Option<Vec<f64>>, Error> {
        let cfg = &self.model.cfg;
        let (rows, f) = (cfg.batch_size, cfg.n_feat);
        if self.ahead {
            std::mem::swap(&mut self.batch, &mut self.next);
        } else {
            self.sampler.sample(rows, f, &mut self.batch);
        }
        self.positions.clear();
        self.positions
            .extend(self.sampler.rngs.iter().map(|r| r.get_word_pos()));
        let scale = T::one() / T::from_f64((rows * f) as f64);
        let spec = adam_spec::<T>(cfg, self.step);
        let (sampler, next) = (&mut self.sampler, &mut self.next);
        let batch = &self.batch;
        let losses = want_loss.then_some(&mut self.losses[..]);
        let (fast, pool) = match &mut self.engine {
            Engine::Fast { fast, pool } => (fast, &*pool),
            Engine::Dense(state) => {
                let result = state.step(&mut self.model, batch, &spec, losses);
                sampler.sample(rows, f, next);
                self.ahead = true;
                return self.finish_step(result, want_loss);
            }
        };
        let ((), result) = if fast.bk().parallel_instances() {
            // On rayon's threads: the states side by side, or one instance's large
            // products in two halves, while the other thread draws the next batch.
            rayon::join(
                || sampler.sample(rows, f, next),
                || fast.train_step(pool, batch, scale, &spec, losses),
            )
        } else {
            let r = fast.train_step(pool, batch, scale, &spec, losses);
            sampler.sample(rows, f, next);
            ((), r)
        };
        self.ahead = true;
        self.finish_step(result, want_loss)
    }

    /// Counts a step that succeeded; names the step in a non-finite loss.
    fn finish_step(
        &mut self,
        result: Result<(), Error>,
        want_loss: bool,
    ) -> Result<Option<Vec<f64>>, Error> {
        match result {
            Err(Error::NonFinite {
                instance, value, ..
            }) => Err(Error::NonFinite {
                step: self.step,
                instance,
                value,
            }),
            Err(e) => Err(e),
            Ok(()) => {
                self.step += 1;
                Ok(want_loss.then(|| self.losses.clone()))
            }
        }
    }

    /// Trains until `cfg.steps` (or `until`, if smaller) steps are done, calling `on_log`
    /// at every logged step; `on_log` returning `false` stops early (e.g. on Ctrl-C).
    pub fn run(
        &mut self,
        until: Option<u64>,
        mut on_log: impl FnMut(&Self, &LogPoint) -> Result<bool, Error>,
    ) -> Result<Vec<LogPoint>, Error> {
        let end = until.unwrap_or(u64::MAX).min(self.model.cfg.steps);
        let every = self.model.cfg.log_every;
        let mut log = Vec::new();
        while self.step < end {
            // Log the first step, every `every` completed steps, and the last.
            let done = self.step + 1;
            let want = self.step == 0 || done.is_multiple_of(every) || done == end;
            if let Some(loss) = self.step(want)? {
                let point = LogPoint {
                    step: self.step,
                    loss,
                };
                let go_on = on_log(self, &point)?;
                log.push(point);
                if !go_on {
                    break;
                }
            }
        }
        Ok(log)
    }

    /// The host model with the current parameters.
    pub fn snapshot(&self) -> Result<Model<T>, Error> {
        let mut m = self.model.clone();
        m.params = self.read_params()?;
        Ok(m)
    }

    /// The current parameters (`K × P`).
    pub fn read_params(&self) -> Result<Vec<T>, Error> {
        match &self.engine {
            Engine::Fast { fast, .. } => fast.read_params(),
            Engine::Dense(_) => Ok(self.model.params.clone()),
        }
    }

    /// The Adam moments `(m, v)` (`K × P` each).
    pub fn read_moments(&self) -> Result<(Vec<T>, Vec<T>), Error> {
        match &self.engine {
            Engine::Fast { fast, .. } => fast.read_moments(),
            Engine::Dense(state) => Ok((state.adam_m.clone(), state.adam_v.clone())),
        }
    }

    /// Whether the steps run on the fast path (else on the dense reference path).
    pub fn on_fast_path(&self) -> bool {
        matches!(self.engine, Engine::Fast { .. })
    }
}
