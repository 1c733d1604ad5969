//! A model's MLP folded into feature space and run on the host over the evaluation
//! stream: for questions the fast path does not ask (which neurons ever fire; the loss of
//! model definitions outside the family).
//!
//! Folding: `W1' = W1·W_E` (`H×F`), `W2' = W_Eᵀ·W2` (`F×H`), `b2' = W_Eᵀ·b2`, `b1' = b1`
//! ([`crate::transplant`]); without an embedding the weights are used as they are. The
//! residual stream is not part of the folded MLP `g(x) = W2' ReLU(W1' x + b1') + b2'`.
//!
//! - [`neuron_activity`]: over `n` samples of the stream, neuron `j` is *dead* if its
//!   pre-activation `(W1' x + b1')_j` is never `> 0`, and *silent* if its largest output
//!   in feature space, `max_x ReLU(…)_j·‖W2'_{:,j}‖₂`, is below [`SILENT_OUTPUT`] (a
//!   hundredth of a unit label): alive in name only.
//! - [`eval_with_skip`]: the loss of `out = g(x) + s·x` against labels `ReLU(x) + r_l·x`,
//!   i.e. a skip connection whose factor `s` need not be the labels' `r_l` (in the family
//!   both are `r`). Same samples as the fast path's evaluation (stream of `eval_seed` at
//!   each instance's `p`), same loss and naive loss; computed in f64 on sparse inputs,
//!   `O(H·nnz + F·(active neurons))` per sample.

use serde::Serialize;
use tmcc_model::batch::{HostBatch, Sampler};
use tmcc_model::config::LossName;
use tmcc_model::eval::InstanceEval;
use tmcc_model::init::{rng, Stream};
use tmcc_model::{Model, Param};

use crate::transplant::transplant;
use crate::Error;

/// Largest output (in units of a label) below which a neuron counts as silent.
pub const SILENT_OUTPUT: f64 = 0.01;

/// Samples drawn per call of the sampler.
const CHUNK: usize = 4096;

/// The folded MLP of one instance, in f64.
struct Folded {
    f: usize,
    /// `H×F`.
    w1: Vec<f64>,
    b1: Vec<f64>,
    /// `W2'ᵀ`, `H×F`: row `j` is what neuron `j` writes to the features.
    w2t: Vec<f64>,
    b2: Vec<f64>,
}

fn fold(model: &Model<f32>) -> Result<Model<f32>, Error> {
    Ok(if model.cfg.variant.has_embedding() {
        transplant(model)?
    } else {
        model.clone()
    })
}

impl Folded {
    fn of(folded: &Model<f32>, k: usize) -> Self {
        let (f, h) = (folded.cfg.n_feat, folded.cfg.n_hidden);
        let get = |p: Param| -> Option<Vec<f64>> {
            folded
                .tensor(k, p)
                .map(|t| t.iter().map(|&v| v as f64).collect())
        };
        let w1 = get(Param::W1).expect("every model has W1");
        let w2t = match get(Param::W2) {
            // W2' is F×H row-major; its transpose is H×F.
            Some(w2) => (0..h * f).map(|i| w2[(i % f) * h + i / f]).collect(),
            None => w1.clone(),
        };
        Self {
            f,
            w1,
            b1: get(Param::B1).unwrap_or_else(|| vec![0.0; h]),
            w2t,
            b2: get(Param::B2).unwrap_or_else(|| vec![0.0; f]),
        }
    }

    /// Hidden activations of one sparse sample.
    fn hidden(&self, cols: &[u32], vals: &[f32], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            let pre = self.b1[j]
                + cols
                    .iter()
                    .zip(vals)
                    .map(|(&c, &v)| self.w1[j * self.f + c as usize] * v as f64)
                    .sum::<f64>();
            *o = pre.max(0.0);
        }
    }
}

/// Runs `visit(instance, cols, vals)` on `samples` samples of every instance's evaluation
/// stream.
fn for_each_sample(
    model: &Model<f32>,
    samples: usize,
    mut visit: impl FnMut(usize, &[u32], &[f32]),
) {
    let cfg = &model.cfg;
    let k = model.instances();
    let mut sampler = Sampler::<f32>::new(
        (0..k).map(|_| rng(cfg.eval_seed, Stream::Eval)).collect(),
        (0..k).map(|i| cfg.instance_p(i)).collect(),
    )
    .with_data(tmcc_model::data::DataSpec::of(cfg));
    let mut batch = HostBatch::default();
    let mut done = 0;
    while done < samples {
        let n = CHUNK.min(samples - done);
        sampler.sample(n, cfg.n_feat, &mut batch);
        for row in 0..k * n {
            let (a, b) = (batch.row_ptr[row] as usize, batch.row_ptr[row + 1] as usize);
            visit(row / n, &batch.col[a..b], &batch.val[a..b]);
        }
        done += n;
    }
}

/// Neurons of one instance by activity on the evaluation stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NeuronCounts {
    /// Never active on the samples.
    pub dead: usize,
    /// Active, but never writing more than [`SILENT_OUTPUT`].
    pub silent: usize,
    /// The others.
    pub alive: usize,
}

/// [`NeuronCounts`] of every instance of `model` over `samples` samples of the stream.
pub fn neuron_activity(model: &Model<f32>, samples: usize) -> Result<Vec<NeuronCounts>, Error> {
    let folded = fold(model)?;
    let nets: Vec<Folded> = (0..model.instances())
        .map(|k| Folded::of(&folded, k))
        .collect();
    let h = model.cfg.n_hidden;
    let mut largest = vec![vec![0.0f64; h]; nets.len()];
    let mut ever = vec![vec![false; h]; nets.len()];
    let mut act = vec![0.0; h];
    for_each_sample(model, samples, |k, cols, vals| {
        nets[k].hidden(cols, vals, &mut act);
        for j in 0..h {
            if act[j] > 0.0 {
                ever[k][j] = true;
                largest[k][j] = largest[k][j].max(act[j]);
            }
        }
    });
    Ok(nets
        .iter()
        .enumerate()
        .map(|(k, net)| {
            let mut c = NeuronCounts::default();
            for j in 0..h {
                let norm = net.w2t[j * net.f..(j + 1) * net.f]
                    .iter()
                    .map(|w| w * w)
                    .sum::<f64>()
                    .sqrt();
                if !ever[k][j] {
                    c.dead += 1;
                } else if largest[k][j] * norm < SILENT_OUTPUT {
                    c.silent += 1;
                } else {
                    c.alive += 1;
                }
            }
            c
        })
        .collect())
}

/// Evaluates `out = g(x) + skip·x` against `ReLU(x) + label_r·x` for every instance of
/// `model` on `samples` samples of its evaluation stream (module docs).
pub fn eval_with_skip(
    model: &Model<f32>,
    skip: f64,
    label_r: f64,
    samples: usize,
) -> Result<Vec<InstanceEval>, Error> {
    let folded = fold(model)?;
    let cfg = &model.cfg;
    let nets: Vec<Folded> = (0..model.instances())
        .map(|k| Folded::of(&folded, k))
        .collect();
    let (f, h) = (cfg.n_feat, cfg.n_hidden);
    let imp: Vec<f64> = (0..f).map(|i| cfg.importance_of(i)).collect();
    let (mut sum, mut sum_sq) = (vec![0.0; nets.len()], vec![0.0; nets.len()]);
    let mut act = vec![0.0; h];
    let mut out = vec![0.0; f];
    let mut x = vec![0.0; f];
    for_each_sample(model, samples, |k, cols, vals| {
        let net = &nets[k];
        net.hidden(cols, vals, &mut act);
        out.copy_from_slice(&net.b2);
        for (j, &a) in act.iter().enumerate() {
            if a > 0.0 {
                for (o, w) in out.iter_mut().zip(&net.w2t[j * f..(j + 1) * f]) {
                    *o += a * w;
                }
            }
        }
        x.fill(0.0);
        for (&c, &v) in cols.iter().zip(vals) {
            x[c as usize] = v as f64;
        }
        let loss: f64 = (0..f)
            .map(|i| {
                let e = out[i] + skip * x[i] - (x[i].max(0.0) + label_r * x[i]);
                imp[i]
                    * match cfg.loss {
                        LossName::L2 => e * e,
                        LossName::L1 => e.abs(),
                    }
            })
            .sum::<f64>()
            / f as f64;
        sum[k] += loss;
        sum_sq[k] += loss * loss;
    });
    let n = samples as f64;
    Ok((0..nets.len())
        .map(|k| {
            let p = cfg.instance_p(k);
            let mean = sum[k] / n;
            let var = ((sum_sq[k] / n - mean * mean) * n / (n - 1.0).max(1.0)).max(0.0);
            let se = (var / n).sqrt();
            let naive = cfg.naive_loss(p);
            InstanceEval {
                instance: k,
                p,
                samples,
                loss: mean,
                loss_se: se,
                naive,
                ratio: mean / naive,
                ratio_se: se / naive,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{eval_model, Device};
    use tmcc_model::{Config, Variant};

    fn trained_like(variant: Variant) -> Model<f32> {
        let cfg = Config {
            variant,
            n_feat: 20,
            n_hidden: 8,
            d_emb: 60,
            p: 0.1,
            bias1: true,
            instances: 2,
            ..Config::default()
        };
        let mut m = Model::<f32>::new(&cfg).unwrap();
        for (i, w) in m.params.iter_mut().enumerate() {
            *w += 0.05 * ((i % 5) as f32 - 2.0);
        }
        m
    }

    /// With the skip factor equal to the labels' (the family's definition) the host
    /// evaluation is the fast path's, on the same samples: `mlp` (s = r = 0), `res_mlp`
    /// (s = r = 1) and the folded `emb_mlp` (its transplant).
    #[test]
    fn host_evaluation_with_the_familys_skip_is_the_fast_paths() {
        for (variant, r) in [
            (Variant::Mlp, 0.0),
            (Variant::ResMlp, 1.0),
            (Variant::EmbMlp, 0.0),
        ] {
            let m = trained_like(variant);
            let fast = eval_model(&Device::Cpu, &m, 20_000, None).unwrap();
            let host = eval_with_skip(&m, r, r, 20_000).unwrap();
            for (a, b) in fast.iter().zip(&host) {
                assert!(
                    (a.loss - b.loss).abs() <= 1e-4 * a.loss,
                    "{variant:?}: {} vs {}",
                    a.loss,
                    b.loss
                );
            }
            // A skip the labels do not have costs more.
            let off = eval_with_skip(&m, r + 1.0, r, 20_000).unwrap();
            assert!(off[0].loss > host[0].loss, "{variant:?}");
        }
    }

    /// A neuron whose W1 row is zero is dead; one whose W2 column is tiny is silent.
    #[test]
    fn dead_and_silent_neurons_are_counted() {
        let mut m = trained_like(Variant::Mlp);
        let h = 8;
        let w1 = m.tensor_mut(0, Param::W1).unwrap();
        w1[..20].fill(0.0); // neuron 0 reads nothing
        m.tensor_mut(0, Param::B1).unwrap().fill(0.0);
        let w2 = m.tensor_mut(0, Param::W2).unwrap();
        for i in 0..20 {
            w2[i * h + 1] = 1e-5; // neuron 1 writes almost nothing
        }
        let c = neuron_activity(&m, 5_000).unwrap();
        assert_eq!(c[0].dead, 1, "{:?}", c[0]);
        assert_eq!(c[0].silent, 1, "{:?}", c[0]);
        assert_eq!(c[0].alive, 6);
    }
}
