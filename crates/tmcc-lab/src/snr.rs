//! APD's signal-to-noise ratio of pairs of active features.
//!
//! For an ordered pair of features `i ≠ j` set to the values `(a, b)` — APD looks at
//! `(1, 1)` and `(1, −1)` — the input is `x = a·e_i + b·e_j` and, with the model's
//! read-off output `out` (`F` values):
//!
//! `signal = min(|out_i|, |out_j|)`, `noise = sd(out_1 … out_F)` (the sample standard
//! deviation with `F − 1`, over all `F` outputs, the two active ones included, as APD's
//! analysis takes it), `SNR_ij = signal / noise`.
//!
//! For a single feature (`x = e_i`, APD's diagonal of the `(1, 1)` map) the signal is
//! `|out_i|`. High SNR: the two active features stand out of the other outputs; low: the
//! interference of computing many features in superposition drowns them.
//!
//! Shapes: per instance, one dense reference pass ([`forward_backward`], any depth) over
//! the `F·(F−1)` pair inputs, in chunks of at most [`CHUNK_ROWS`] rows; the result keeps a
//! summary (mean, quantiles, minimum) over the pairs of each value setting and over the
//! single features.

use ndarray::Array2;
use serde::Serialize;
use tmcc_model::reference::forward_backward;
use tmcc_model::Model;

/// Rows per reference pass.
pub const CHUNK_ROWS: usize = 1024;

/// The value settings of APD's pair maps.
pub const PAIR_VALUES: [(f64, f64); 2] = [(1.0, 1.0), (1.0, -1.0)];

/// A distribution of SNRs, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnrSummary {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    /// The 5 % quantile, the median (nearest rank).
    pub q05: f64,
    pub median: f64,
}

impl SnrSummary {
    /// The summary of `values` (not empty).
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |q: f64| sorted[((q * (n - 1) as f64).round() as usize).min(n - 1)];
        Self {
            count: n,
            mean: sorted.iter().sum::<f64>() / n as f64,
            min: sorted[0],
            q05: rank(0.05),
            median: rank(0.5),
        }
    }
}

/// One pair setting `(a, b)` of one instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairSnr {
    pub values: (f64, f64),
    pub summary: SnrSummary,
}

/// The SNRs of one instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceSnr {
    pub instance: usize,
    /// `x = e_i`, every feature.
    pub single: SnrSummary,
    /// One entry per setting of [`PAIR_VALUES`].
    pub pairs: Vec<PairSnr>,
}

/// `signal / noise` of one output row whose active features are `active`.
pub fn snr_of_row(out: &[f64], active: &[usize]) -> f64 {
    let n = out.len() as f64;
    let mean = out.iter().sum::<f64>() / n;
    let var = out.iter().map(|o| (o - mean) * (o - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    let signal = active
        .iter()
        .map(|&i| out[i].abs())
        .fold(f64::INFINITY, f64::min);
    signal / var.sqrt()
}

/// The SNR of every input `x_r` (rows of `inputs`, each with its active features) of
/// instance `k`.
fn snrs(model: &Model<f32>, k: usize, inputs: &[(Vec<usize>, Vec<f32>)]) -> Vec<f64> {
    let f = model.cfg.n_feat;
    inputs
        .chunks(CHUNK_ROWS)
        .flat_map(|chunk| {
            let mut x = Array2::<f32>::zeros((chunk.len(), f));
            for (r, (active, vals)) in chunk.iter().enumerate() {
                for (&i, &v) in active.iter().zip(vals) {
                    x[[r, i]] = v;
                }
            }
            let out = forward_backward(model, k, x.view(), false).out;
            chunk
                .iter()
                .enumerate()
                .map(|(r, (active, _))| {
                    let row: Vec<f64> = out.row(r).iter().map(|&o| o as f64).collect();
                    snr_of_row(&row, active)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The SNRs of every instance of `model`: single features and the pair maps of
/// [`PAIR_VALUES`].
pub fn snr(model: &Model<f32>) -> Vec<InstanceSnr> {
    (0..model.instances())
        .map(|k| instance_snr(model, k))
        .collect()
}

/// The SNRs of instance `k` of `model` (as [`snr`]).
pub fn instance_snr(model: &Model<f32>, k: usize) -> InstanceSnr {
    let f = model.cfg.n_feat;
    let singles: Vec<(Vec<usize>, Vec<f32>)> = (0..f).map(|i| (vec![i], vec![1.0])).collect();
    InstanceSnr {
        instance: k,
        single: SnrSummary::of(&snrs(model, k, &singles)),
        pairs: PAIR_VALUES
            .iter()
            .map(|&(a, b)| {
                let pairs: Vec<(Vec<usize>, Vec<f32>)> = (0..f)
                    .flat_map(|i| (0..f).filter(move |&j| j != i).map(move |j| (i, j)))
                    .map(|(i, j)| (vec![i, j], vec![a as f32, b as f32]))
                    .collect();
                PairSnr {
                    values: (a, b),
                    summary: SnrSummary::of(&snrs(model, k, &pairs)),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmcc_model::config::Variant;
    use tmcc_model::{Config, Param};

    /// Row SNR: two outputs of 2 among zeros: mean `4/F`, the signal 2.
    #[test]
    fn snr_of_a_row_is_the_smaller_active_output_over_the_sample_sd() {
        let mut out = vec![0.0; 10];
        out[3] = 2.0;
        out[7] = -3.0;
        let mean = -0.1;
        let var = ((2.0f64 - mean).powi(2) + (-3.0f64 - mean).powi(2) + 8.0 * mean * mean) / 9.0;
        let want = 2.0 / var.sqrt();
        assert!((snr_of_row(&out, &[3, 7]) - want).abs() < 1e-12);
        assert!((snr_of_row(&out, &[7]) - 3.0 / var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn summary_takes_nearest_rank_quantiles() {
        let v: Vec<f64> = (0..21).rev().map(|i| i as f64).collect();
        let s = SnrSummary::of(&v);
        assert_eq!(
            (s.count, s.min, s.q05, s.median, s.mean),
            (21, 0.0, 1.0, 10.0, 10.0)
        );
    }

    /// The identity model (`res_mlp` with `r = 1` and a zero MLP) outputs `x`: a pair at
    /// `(a, b)` has the signal 1 and the noise of two ±1 among `F − 2` zeros, whatever the
    /// signs of the pair: `SNR = 1/sd`. Giving one neuron to feature 0 (out_0 = 1 + 1) moves
    /// only the pairs with feature 0.
    #[test]
    fn the_identity_model_has_the_snr_of_its_inputs() {
        let f = 5;
        let cfg = Config {
            variant: Variant::ResMlp,
            n_feat: f,
            n_hidden: 1,
            bias1: false,
            bias2: false,
            instances: 1,
            ..Config::default()
        };
        let mut model = Model::<f32>::new(&cfg).unwrap();
        model.params.iter_mut().for_each(|w| *w = 0.0);
        let sd = |out: &[f64]| {
            let m = out.iter().sum::<f64>() / f as f64;
            (out.iter().map(|o| (o - m) * (o - m)).sum::<f64>() / (f - 1) as f64).sqrt()
        };
        let got = &snr(&model)[0];
        let single = 1.0 / sd(&[1.0, 0.0, 0.0, 0.0, 0.0]);
        assert!((got.single.min - single).abs() < 1e-6 && (got.single.mean - single).abs() < 1e-6);
        let same = 1.0 / sd(&[1.0, 1.0, 0.0, 0.0, 0.0]);
        let opposite = 1.0 / sd(&[1.0, -1.0, 0.0, 0.0, 0.0]);
        assert_eq!(got.pairs[0].summary.count, f * (f - 1));
        assert!((got.pairs[0].summary.median - same).abs() < 1e-6);
        assert!((got.pairs[1].summary.median - opposite).abs() < 1e-6);
        // Feature 0 computed: out_0 = x_0 + ReLU(x_0).
        model.tensor_mut(0, Param::W1).unwrap()[0] = 1.0;
        model.tensor_mut(0, Param::W2).unwrap()[0] = 1.0;
        let moved = &snr(&model)[0];
        let pair0 = 1.0 / sd(&[2.0, 1.0, 0.0, 0.0, 0.0]);
        assert!((moved.pairs[0].summary.min - pair0.min(same)).abs() < 1e-6);
        assert!((moved.pairs[0].summary.median - same).abs() < 1e-6);
    }
}
