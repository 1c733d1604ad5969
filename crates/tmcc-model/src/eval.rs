//! Evaluation on a fixed stream, and the per-feature input–output response.
//!
//! The evaluation stream depends only on `eval_seed` and `p` (stream [`Stream::Eval`]), so
//! two models evaluated at the same `p` see the same samples, whatever their batch size.
//! A sample's loss is `Σ_f imp_f·ℓ(out_f − y_f)/F`; we report the mean over samples, its
//! standard error `sd/√n`, and both divided by the naive loss at that `p`.
//!
//! Response: for feature `i` and `v` on an even grid of `[-1, 1]`, the input `x = v·e_i`;
//! `resid_i(v) = out_i − r·v` (`r` = 0 without a residual stream) is compared with what
//! the MLP must add to the residual for the label, `t_i(v) = act(c_i·v)` (the model's
//! hidden activation and label coefficient, [`crate::task`]; `ReLU(v)` for the seed's
//! task; `|c_i·v| − r·v` and `ReLU(c_i·v) − r·v` for `abs` and `relu` labels). With `ρ = RMS_v t_i`: *computed* if `RMS(resid − t_i)/ρ ≤ 0.2`,
//! *zero* if `RMS(resid)/ρ ≤ 0.2`, else *partial*.

use serde::{Deserialize, Serialize};
use tmcc_kernels::Backend;

use crate::batch::{HostBatch, Sampler};
use crate::config::Config;
use crate::fast::FastModel;
use crate::init::{rng, Stream};
use crate::model::Float;
use crate::task::Task;
use crate::Error;

/// Largest `K·rows·width` the evaluation workspace may take per buffer.
pub(crate) const EVAL_CELLS: usize = 1 << 23;

/// Rows per evaluation batch of `k` instances of `cfg` for `samples` samples: at most
/// `eval_batch`, and few enough that a buffer of `k·rows·max(F, H)` stays near
/// `EVAL_CELLS` (at least 64 rows).
pub fn eval_rows(cfg: &Config, samples: usize, k: usize) -> usize {
    let width = cfg.n_feat.max(cfg.n_hidden);
    cfg.eval_batch
        .min(samples)
        .min((EVAL_CELLS / (k * width).max(1)).max(64))
}

/// Evaluation of one instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceEval {
    pub instance: usize,
    pub p: f64,
    pub samples: usize,
    pub loss: f64,
    pub loss_se: f64,
    pub naive: f64,
    /// `loss / naive`.
    pub ratio: f64,
    pub ratio_se: f64,
}

/// Evaluates every instance on `samples` samples of the evaluation stream at probability
/// `ps[k]` (default: the instance's training `p`).
/// The feature probability each of the `k` instances is evaluated at: `ps` when given (one
/// per instance), else each instance's training `p`.
pub fn eval_probabilities(cfg: &Config, k: usize, ps: Option<&[f64]>) -> Result<Vec<f64>, Error> {
    match ps {
        Some(ps) if ps.len() == k => Ok(ps.to_vec()),
        Some(ps) => Err(Error::Shape(format!(
            "{} eval probabilities for {k} instances",
            ps.len()
        ))),
        None => Ok((0..k).map(|i| cfg.instance_p(i)).collect()),
    }
}

pub fn evaluate<T: Float, Bk: Backend<T>>(
    fast: &mut FastModel<T, Bk>,
    cfg: &Config,
    samples: usize,
    ps: Option<&[f64]>,
) -> Result<Vec<InstanceEval>, Error> {
    let k = fast.instances();
    let ps = eval_probabilities(cfg, k, ps)?;
    let f = cfg.n_feat;
    let rows = eval_rows(cfg, samples, k);
    let mut sampler = Sampler::<T>::new(
        (0..k).map(|_| rng(cfg.eval_seed, Stream::Eval)).collect(),
        ps.clone(),
    )
    .with_data(crate::data::DataSpec::of(cfg));
    let mut batch = HostBatch::default();
    let (mut sum, mut sum_sq) = (vec![0.0f64; k], vec![0.0f64; k]);
    let scale = T::one() / T::from_f64(f as f64);
    let mut ws = fast.workspace(rows)?;
    let mut done = 0;
    while done < samples {
        let n = rows.min(samples - done);
        if n != ws.rows {
            ws = fast.workspace(n)?;
        }
        sampler.sample(n, f, &mut batch);
        fast.load_batch(&mut ws, &batch)?;
        fast.forward(&mut ws, scale, false)?;
        let rl = fast.bk().read(&ws.row_loss)?;
        for (i, chunk) in rl.chunks_exact(n).enumerate() {
            for v in chunk {
                let v = v.as_f64();
                sum[i] += v;
                sum_sq[i] += v * v;
            }
        }
        done += n;
    }
    Ok(summarise(cfg, samples, &ps, &sum, &sum_sq))
}

/// Mean, standard error and naive ratio of every instance from the sums of its per-sample
/// losses and of their squares over `samples` samples.
pub(crate) fn summarise(
    cfg: &Config,
    samples: usize,
    ps: &[f64],
    sum: &[f64],
    sum_sq: &[f64],
) -> Vec<InstanceEval> {
    let n = samples as f64;
    (0..ps.len())
        .map(|i| {
            let mean = sum[i] / n;
            let var = ((sum_sq[i] / n - mean * mean) * n / (n - 1.0).max(1.0)).max(0.0);
            let se = (var / n).sqrt();
            let naive = cfg.naive_loss(ps[i]);
            InstanceEval {
                instance: i,
                p: ps[i],
                samples,
                loss: mean,
                loss_se: se,
                naive,
                ratio: mean / naive,
                ratio_se: se / naive,
            }
        })
        .collect()
}

/// How a feature's response is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureClass {
    Computed,
    Zero,
    Partial,
}

/// Threshold on the relative RMS errors of the classification (see module docs).
pub const RESPONSE_TOLERANCE: f64 = 0.2;

/// The response of one feature of one instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureResponse {
    pub feature: usize,
    /// `out_i − r·v` at each grid point.
    pub resid: Vec<f64>,
    /// `RMS(resid − t)/ρ` with the target `t = act(c·v)`.
    pub err_computed: f64,
    /// `RMS(resid)/ρ`.
    pub err_zero: f64,
    pub class: FeatureClass,
}

/// The input grid of [`response`]: `n` points evenly on `[-1, 1]`.
pub fn response_grid(n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| -1.0 + 2.0 * j as f64 / (n.max(2) - 1) as f64)
        .collect()
}

/// The target a computed feature `f` of `task` follows on the grid `v` (beyond the
/// residual): [`Task::target`], `act(c_f·v)` for `act_plus_resid` labels, `|c_f·v| − ρ·v`
/// or `ReLU(c_f·v) − ρ·v` for `abs` and `relu`.
pub fn response_target(task: &Task, f: usize, v: &[f64]) -> Vec<f64> {
    v.iter().map(|&vj| task.target(f, vj)).collect()
}

/// Classifies a response `resid` against its `target` (both on one grid).
pub fn classify(target: &[f64], resid: &[f64]) -> (f64, f64, FeatureClass) {
    let rms = |it: &mut dyn Iterator<Item = f64>| {
        let (s, n) = it.fold((0.0, 0usize), |(s, n), e| (s + e * e, n + 1));
        (s / n.max(1) as f64).sqrt()
    };
    let rho = rms(&mut target.iter().copied());
    let err_c = rms(&mut target.iter().zip(resid).map(|(t, r)| r - t)) / rho;
    let err_z = rms(&mut resid.iter().copied()) / rho;
    let class = if err_c <= RESPONSE_TOLERANCE {
        FeatureClass::Computed
    } else if err_z <= RESPONSE_TOLERANCE {
        FeatureClass::Zero
    } else {
        FeatureClass::Partial
    };
    (err_c, err_z, class)
}

/// The response of every feature of every instance (`[instance][feature]`) on a grid of
/// `points` values of `v`.
pub fn response<T: Float, Bk: Backend<T>>(
    fast: &mut FastModel<T, Bk>,
    cfg: &Config,
    points: usize,
) -> Result<Vec<Vec<FeatureResponse>>, Error> {
    let (k, f) = (fast.instances(), cfg.n_feat);
    let (v, batch) = response_batch::<T>(k, f, points);
    let mut ws = fast.workspace(batch.rows_per_instance)?;
    fast.load_batch(&mut ws, &batch)?;
    fast.forward(&mut ws, T::one(), false)?;
    let out = fast.bk().read(fast.output(&ws))?;
    Ok(classify_outputs(cfg, &v, &out, k))
}

/// The grid of [`response_grid`] and the batch of its inputs: for every instance, rows
/// `i·points + j` hold `v_j·e_i` (`F·points` rows).
pub(crate) fn response_batch<T: Float>(
    k: usize,
    f: usize,
    points: usize,
) -> (Vec<f64>, HostBatch<T>) {
    let v = response_grid(points);
    let rows = f * points;
    let mut dense = vec![T::zero(); k * rows * f];
    for inst in 0..k {
        for i in 0..f {
            for (j, &vj) in v.iter().enumerate() {
                dense[(inst * rows + i * points + j) * f + i] = T::from_f64(vj);
            }
        }
    }
    (v, HostBatch::from_dense(k, rows, f, &dense))
}

/// Classifies every feature from the outputs `out` (`K × F·points × F`) of the batch of
/// [`response_batch`].
pub(crate) fn classify_outputs<T: Float>(
    cfg: &Config,
    v: &[f64],
    out: &[T],
    k: usize,
) -> Vec<Vec<FeatureResponse>> {
    let (f, points) = (cfg.n_feat, v.len());
    let rows = f * points;
    let r = if cfg.variant.has_residual() {
        cfg.res_factor()
    } else {
        0.0
    };
    let task = cfg.task();
    let targets: Vec<Vec<f64>> = (0..f).map(|i| response_target(&task, i, v)).collect();
    (0..k)
        .map(|inst| {
            (0..f)
                .map(|i| {
                    let resid: Vec<f64> = v
                        .iter()
                        .enumerate()
                        .map(|(j, &vj)| {
                            out[(inst * rows + i * points + j) * f + i].as_f64() - r * vj
                        })
                        .collect();
                    let (err_computed, err_zero, class) = classify(&targets[i], &resid);
                    FeatureResponse {
                        feature: i,
                        resid,
                        err_computed,
                        err_zero,
                        class,
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the response batch (`x = v_j·e_i`, `F` features) answered with its
    /// label on all features (only `out_i` is read): a model that computes every feature.
    fn labels_as_outputs(task: &Task, f: usize, v: &[f64]) -> Vec<f64> {
        (0..f)
            .flat_map(|i| v.iter().map(move |&vj| (i, vj)))
            .flat_map(|(i, vj)| (0..f).map(move |o| if o == i { vj } else { 0.0 }))
            .enumerate()
            .map(|(cell, x)| task.label(cell % f, x))
            .collect()
    }

    #[test]
    fn classification_separates_the_three_cases() {
        let v = response_grid(41);
        let relu: Vec<f64> = v.iter().map(|v| v.max(0.0)).collect();
        assert_eq!(classify(&relu, &relu).2, FeatureClass::Computed);
        assert_eq!(classify(&relu, &vec![0.01; 41]).2, FeatureClass::Zero);
        let half: Vec<f64> = relu.iter().map(|r| 0.5 * r).collect();
        assert_eq!(classify(&relu, &half).2, FeatureClass::Partial);
    }

    /// A GELU model with label coefficients `c ≠ 1` whose outputs are exactly its labels
    /// is *computed* on every feature; the seed's target `ReLU(v)` would call most of its
    /// features partial.
    #[test]
    fn the_target_is_the_models_activation_of_c_times_v() {
        use crate::act::Act;
        use crate::config::{LabelCoeffs, Variant};
        let cfg = Config {
            variant: Variant::ResMlp,
            n_feat: 6,
            n_hidden: 3,
            act: Act::Gelu,
            label_coeffs: LabelCoeffs::Uniform,
            res_factor: Some(0.5),
            ..Config::default()
        };
        let task = cfg.task();
        assert!(task.coeffs.iter().all(|&c| c > 1.0), "{:?}", task.coeffs);
        let (f, points) = (cfg.n_feat, 21);
        let v = response_grid(points);
        let out = labels_as_outputs(&task, f, &v);
        let resp = classify_outputs(&cfg, &v, &out, 1);
        for fr in &resp[0] {
            assert_eq!(fr.class, FeatureClass::Computed, "{fr:?}");
            assert!(fr.err_computed < 1e-12);
            let relu: Vec<f64> = v.iter().map(|v| v.max(0.0)).collect();
            assert_ne!(classify(&relu, &fr.resid).2, FeatureClass::Computed);
        }
    }

    /// With `abs` labels on a residual model a model that outputs its labels computes every
    /// feature: the target is `|c·v| − r·v`, not `act(c·v)`.
    #[test]
    fn the_target_of_abs_labels_is_what_the_residual_leaves() {
        use crate::config::{Labels, Variant};
        let cfg = Config {
            variant: Variant::ResMlp,
            n_feat: 4,
            n_hidden: 2,
            labels: Labels::Abs,
            res_factor: Some(0.5),
            ..Config::default()
        };
        let task = cfg.task();
        let (f, v) = (cfg.n_feat, response_grid(21));
        let out = labels_as_outputs(&task, f, &v);
        for fr in &classify_outputs(&cfg, &v, &out, 1)[0] {
            assert_eq!(fr.class, FeatureClass::Computed, "{fr:?}");
        }
    }
}
