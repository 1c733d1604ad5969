//! The training loop: a fresh sparse batch every step for every instance (each from its
//! own data stream), forward, backward, one Adam/AdamW update. The loss is read back after
//! the first step, after every `log_every` completed steps and after the last; a NaN or
//! infinite loss stops training with
//! [`Error::NonFinite`] before anything is saved from the bad state.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tmcc_kernels::Backend;

use crate::batch::{HostBatch, Sampler};
use crate::fast::{FastModel, Workspace};
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

/// A model being trained on a backend.
pub struct Trainer<T: Float, Bk: Backend<T>> {
    pub model: Model<T>,
    pub fast: FastModel<T, Bk>,
    ws: Workspace<T, Bk>,
    sampler: Sampler<T>,
    batch: HostBatch<T>,
    /// Steps completed.
    pub step: u64,
}

impl<T: Float, Bk: Backend<T>> Trainer<T, Bk> {
    /// Starts training `model` from step 0.
    pub fn new(bk: Bk, model: Model<T>) -> Result<Self, Error> {
        let cfg = &model.cfg;
        let rngs = (0..cfg.instances)
            .map(|k| rng(cfg.instance_seed(k), Stream::Data))
            .collect();
        let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
        let fast = FastModel::new(bk, &model)?;
        let ws = fast.workspace(cfg.batch_size)?;
        Ok(Self {
            sampler: Sampler::new(rngs, ps),
            batch: HostBatch::default(),
            ws,
            fast,
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
        let mut t = Self::new(bk, model)?;
        let params = t.model.params.clone();
        t.fast.write_state(&params, moments.0, moments.1)?;
        for (r, &pos) in t.sampler.rngs.iter_mut().zip(positions) {
            r.set_word_pos(pos);
        }
        t.step = step;
        Ok(t)
    }

    pub fn stream_positions(&self) -> Vec<u128> {
        stream_positions(&self.sampler.rngs)
    }

    /// One training step; with `want_loss`, returns every instance's batch loss.
    pub fn step(&mut self, want_loss: bool) -> Result<Option<Vec<f64>>, Error> {
        let cfg = &self.model.cfg;
        let (rows, f) = (cfg.batch_size, cfg.n_feat);
        self.sampler.sample(rows, f, &mut self.batch);
        self.fast.load_batch(&mut self.ws, &self.batch)?;
        let scale = T::one() / T::from_f64((rows * f) as f64);
        self.fast.forward(&mut self.ws, scale, true)?;
        self.fast.backward(&mut self.ws)?;
        let losses = if want_loss {
            let rl = self.fast.bk.read(&self.ws.row_loss)?;
            let losses: Vec<f64> = rl
                .chunks_exact(rows)
                .map(|c| c.iter().map(|v| v.as_f64()).sum())
                .collect();
            if let Some((instance, &value)) =
                losses.iter().enumerate().find(|(_, l)| !l.is_finite())
            {
                return Err(Error::NonFinite {
                    step: self.step,
                    instance,
                    value,
                });
            }
            Some(losses)
        } else {
            None
        };
        let spec = adam_spec::<T>(cfg, self.step);
        self.fast.adam_step(&spec)?;
        self.step += 1;
        Ok(losses)
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
        m.params = self.fast.read_params()?;
        Ok(m)
    }
}
