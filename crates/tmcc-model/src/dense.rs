//! Training and evaluation on the dense reference path ([`crate::reference`]), for the
//! options the fast path does not cover yet ([`crate::fast::no_fast_path`]: the
//! residual-space loss, a learned `σ`). Same data streams, same Adam (the CPU backend's fused
//! kernel), same evaluation protocol as the fast path; slow: it forms the `B×D` products.
//!
//! The response of every feature ([`response`]) is computed the same way.
//!
//! Per step: every instance's dense `B×F` batch, its loss and gradient
//! (`reference::forward_backward`, instances side by side on rayon's threads), then one
//! Adam/AdamW update of the flat `K × P` parameters. A learned `σ` without weight decay
//! (`sigma_weight_decay = false`) then gets its own update: the `K` values of `σ` and
//! their moments as they were before the step, through the same Adam with decay 0,
//! written over what the whole-buffer update made of them.

use rayon::prelude::*;
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{AdamSpec, Backend};

use crate::batch::{HostBatch, Sampler};
use crate::eval::{classify_outputs, response_batch, FeatureResponse, InstanceEval, EVAL_CELLS};
use crate::init::{rng, Stream};
use crate::layout::Param;
use crate::model::{Float, Model};
use crate::reference::forward_backward;
use crate::Error;

/// The Adam moments of a model trained on the dense path (`K × P` each).
#[derive(Clone, Debug, PartialEq)]
pub struct DenseState<T> {
    pub adam_m: Vec<T>,
    pub adam_v: Vec<T>,
}

impl<T: Float> DenseState<T> {
    /// Zero moments for `model`.
    pub fn new(model: &Model<T>) -> Self {
        let n = model.params.len();
        Self {
            adam_m: vec![T::zero(); n],
            adam_v: vec![T::zero(); n],
        }
    }

    /// One step of every instance of `model` on `batch`; with `losses`, every instance's
    /// batch loss lands there. A non-finite loss stops before the update.
    pub fn step(
        &mut self,
        model: &mut Model<T>,
        batch: &HostBatch<T>,
        spec: &AdamSpec<T>,
        losses: Option<&mut [f64]>,
    ) -> Result<(), Error> {
        let (k, f, rows) = (model.instances(), model.cfg.n_feat, batch.rows_per_instance);
        let results: Vec<(f64, Vec<T>)> = (0..k)
            .into_par_iter()
            .map(|i| {
                let x = batch.dense_instance(i);
                let xv = ndarray::ArrayView2::from_shape((rows, f), &x).expect("dense batch");
                let r = forward_backward(model, i, xv, true);
                (r.loss.as_f64(), r.grads)
            })
            .collect();
        if let Some((instance, (value, _))) = results
            .iter()
            .enumerate()
            .find(|(_, (l, _))| !l.is_finite())
        {
            return Err(Error::NonFinite {
                step: 0,
                instance,
                value: *value,
            });
        }
        if let Some(out) = losses {
            for (o, (l, _)) in out.iter_mut().zip(&results) {
                *o = *l;
            }
        }
        let grads: Vec<T> = results.into_iter().flat_map(|(_, g)| g).collect();
        let undecayed_sigma = match model.layout.get(Param::Sigma) {
            Some(slot) if !model.cfg.sigma_weight_decay && spec.weight_decay != T::zero() => {
                let p_len = model.layout.len;
                let at: Vec<usize> = (0..k).map(|i| i * p_len + slot.offset).collect();
                let pick = |v: &[T]| at.iter().map(|&j| v[j]).collect::<Vec<T>>();
                Some((
                    pick(&model.params),
                    pick(&grads),
                    pick(&self.adam_m),
                    pick(&self.adam_v),
                    at,
                ))
            }
            _ => None,
        };
        Cpu.adam(
            spec,
            &mut model.params,
            &grads,
            &mut self.adam_m,
            &mut self.adam_v,
        )?;
        if let Some((mut sigma, g, mut m, mut v, at)) = undecayed_sigma {
            let no_decay = AdamSpec {
                weight_decay: T::zero(),
                ..*spec
            };
            Cpu.adam(&no_decay, &mut sigma, &g, &mut m, &mut v)?;
            for (i, &j) in at.iter().enumerate() {
                model.params[j] = sigma[i];
                self.adam_m[j] = m[i];
                self.adam_v[j] = v[i];
            }
        }
        Ok(())
    }
}

/// [`crate::eval::evaluate`] on the dense path: every instance on `samples` samples of the
/// evaluation stream at `ps[k]` (default: the instance's `p`).
pub fn evaluate<T: Float>(
    model: &Model<T>,
    samples: usize,
    ps: Option<&[f64]>,
) -> Result<Vec<InstanceEval>, Error> {
    let cfg = &model.cfg;
    let k = model.instances();
    let ps = crate::eval::eval_probabilities(cfg, k, ps)?;
    let f = cfg.n_feat;
    let rows = cfg
        .eval_batch
        .min(samples)
        .min((EVAL_CELLS / (k * cfg.d_in().max(f))).max(64));
    let mut sampler = Sampler::<T>::new(
        (0..k).map(|_| rng(cfg.eval_seed, Stream::Eval)).collect(),
        ps.clone(),
    )
    .with_data(crate::data::DataSpec::of(cfg));
    let mut batch = HostBatch::default();
    let (mut sum, mut sum_sq) = (vec![0.0f64; k], vec![0.0f64; k]);
    let mut done = 0;
    while done < samples {
        let n = rows.min(samples - done);
        sampler.sample(n, f, &mut batch);
        let row_losses: Vec<Vec<f64>> = (0..k)
            .into_par_iter()
            .map(|i| {
                let x = batch.dense_instance(i);
                let xv = ndarray::ArrayView2::from_shape((n, f), &x).expect("dense batch");
                forward_backward(model, i, xv, false)
                    .row_loss
                    .iter()
                    .map(|v| v.as_f64())
                    .collect()
            })
            .collect();
        for (i, rl) in row_losses.iter().enumerate() {
            for &v in rl {
                sum[i] += v;
                sum_sq[i] += v * v;
            }
        }
        done += n;
    }
    Ok(crate::eval::summarise(cfg, samples, &ps, &sum, &sum_sq))
}

/// [`crate::eval::response`] on the dense path: every feature's response of every
/// instance (`[instance][feature]`) on `points` values of `v`.
pub fn response<T: Float>(model: &Model<T>, points: usize) -> Vec<Vec<FeatureResponse>> {
    let (k, f) = (model.instances(), model.cfg.n_feat);
    let (v, batch) = response_batch::<T>(k, f, points);
    let rows = batch.rows_per_instance;
    let out: Vec<T> = (0..k)
        .into_par_iter()
        .flat_map_iter(|i| {
            let x = batch.dense_instance(i);
            let xv = ndarray::ArrayView2::from_shape((rows, f), &x).expect("dense batch");
            forward_backward(model, i, xv, false).out.into_iter()
        })
        .collect();
    classify_outputs(&model.cfg, &v, &out, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Optimizer, Variant};
    use crate::fast::FastModel;
    use crate::optim::adam_spec;
    use tmcc_kernels::cpu::Cpu;

    /// A `mix` model of 2 instances learning `σ` (from 0.2 and −0.1), AdamW with decay 0.5.
    fn learned_sigma_cfg(sigma_weight_decay: bool) -> Config {
        Config {
            variant: Variant::Mix,
            n_feat: 8,
            n_hidden: 3,
            p: 0.3,
            batch_size: 64,
            instances: 2,
            sigma_per_instance: vec![0.2, -0.1],
            learn_sigma: true,
            sigma_weight_decay,
            optimizer: Optimizer::Adamw,
            weight_decay: 0.5,
            lr: 0.01,
            ..Config::default()
        }
    }

    /// One step of `cfg`'s model on its first batch: (σ before, its gradient, σ after).
    fn sigma_step(cfg: &Config) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut model = Model::<f64>::new(cfg).unwrap();
        let slot = model.layout.get(Param::Sigma).unwrap().offset;
        let mut sampler = Sampler::<f64>::new(
            (0..2)
                .map(|k| rng(cfg.instance_seed(k), Stream::Data))
                .collect(),
            vec![cfg.p; 2],
        );
        let mut batch = HostBatch::default();
        sampler.sample(cfg.batch_size, cfg.n_feat, &mut batch);
        let before: Vec<f64> = (0..2).map(|k| model.sigma(k)).collect();
        let grad: Vec<f64> = (0..2)
            .map(|k| {
                let x = batch.dense_instance(k);
                let xv = ndarray::ArrayView2::from_shape((cfg.batch_size, 8), &x).unwrap();
                forward_backward(&model, k, xv, true).grads[slot]
            })
            .collect();
        let mut state = DenseState::new(&model);
        state
            .step(&mut model, &batch, &adam_spec(cfg, 0), None)
            .unwrap();
        (before, grad, (0..2).map(|k| model.sigma(k)).collect())
    }

    /// The first Adam step moves each `σ` by `lr` against its gradient's sign (`m̂/(√v̂ + ε)
    /// = g/(|g| + ε)`); AdamW first shrinks it by `1 − lr·wd`, unless `sigma_weight_decay = false`.
    #[test]
    fn learned_sigma_takes_adam_steps_with_or_without_decay() {
        for decay in [true, false] {
            let cfg = learned_sigma_cfg(decay);
            let (before, grad, after) = sigma_step(&cfg);
            assert_eq!(before, vec![0.2, -0.1]);
            for k in 0..2 {
                assert!(grad[k].abs() > 1e-6, "σ gradient {}", grad[k]);
                let shrink = if decay {
                    1.0 - cfg.lr * cfg.weight_decay
                } else {
                    1.0
                };
                let want = before[k] * shrink - cfg.lr * grad[k] / (grad[k].abs() + cfg.eps);
                assert!(
                    (after[k] - want).abs() < 1e-9,
                    "decay {decay}, instance {k}: σ {} → {}, want {want}",
                    before[k],
                    after[k]
                );
            }
        }
    }

    /// On a model both paths cover, the dense evaluation and response agree with the fast
    /// path's (same samples, same grid).
    #[test]
    fn dense_evaluation_and_response_match_the_fast_path() {
        let cfg = Config {
            variant: Variant::EmbRes,
            n_feat: 10,
            n_hidden: 4,
            d_emb: 30,
            p: 0.2,
            bias1: true,
            instances: 2,
            eval_batch: 300,
            ..Config::default()
        };
        let mut model = Model::<f64>::new(&cfg).unwrap();
        for (i, w) in model.params.iter_mut().enumerate() {
            *w += 0.03 * ((i % 5) as f64 - 2.0);
        }
        let mut fast = FastModel::new(Cpu, &model).unwrap();
        let want = crate::eval::evaluate(&mut fast, &cfg, 1000, None).unwrap();
        let got = evaluate(&model, 1000, None).unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a.loss - b.loss).abs() <= 1e-12 * b.loss, "{a:?} vs {b:?}");
            assert!((a.loss_se - b.loss_se).abs() <= 1e-9 * b.loss_se);
        }
        let want = crate::eval::response(&mut fast, &cfg, 9).unwrap();
        let got = response(&model, 9);
        for (a, b) in got.iter().flatten().zip(want.iter().flatten()) {
            assert_eq!(a.class, b.class);
            for (x, y) in a.resid.iter().zip(&b.resid) {
                assert!((x - y).abs() < 1e-12, "{x} vs {y}");
            }
        }
    }
}
