//! Everything drawn at random once per instance, from the instance's seed:
//! the initial weights, the embedding `W_E` (`D×F`, unit-norm columns; orthonormal for
//! `emb_res_orth`) and the mixing matrix `M` (`F×F`, zero diagonal unless
//! `mix_diagonal = keep`).
//!
//! Each purpose has its own ChaCha8 stream of the instance seed, so changing one
//! (e.g. the init) never shifts another (e.g. the data). Every random array is drawn by
//! ndarray-rand ([`matrix`]): row-major, one draw per entry, in order.

use ndarray::Array2;
use ndarray_rand::RandomExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use tmcc_kernels::Scalar;

use crate::config::{Config, Init, MixDiagonal, MixRankForm, Mixing};
use crate::layout::{Layout, Param};

/// Independent random streams of one seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Init = 0,
    Embedding = 1,
    Mixing = 2,
    Data = 3,
    Eval = 4,
    /// The label coefficients (seeded by `label_seed`, one set per run).
    Labels = 5,
}

pub fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream as u64);
    r
}

/// A `rows×cols` row-major array of draws of `dist` from `rng` (ndarray-rand).
pub fn matrix(
    rng: &mut ChaCha8Rng,
    rows: usize,
    cols: usize,
    dist: impl Distribution<f64>,
) -> Vec<f64> {
    let (values, offset) = Array2::random_using((rows, cols), dist, rng).into_raw_vec_and_offset();
    debug_assert_eq!(offset, Some(0), "a fresh standard-layout array");
    values
}

/// Draws of `U(low, high)` (`low < high`).
pub fn uniform(low: f64, high: f64) -> Uniform<f64> {
    Uniform::new(low, high).expect("a finite interval with low < high (validated config)")
}

/// A `rows×cols` row-major Gaussian matrix whose columns are scaled to unit norm.
pub fn gaussian_unit_columns(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f64> {
    let mut m = matrix(rng, rows, cols, StandardNormal);
    for c in 0..cols {
        let norm = (0..rows)
            .map(|r| m[r * cols + c].powi(2))
            .sum::<f64>()
            .sqrt();
        for r in 0..rows {
            m[r * cols + c] /= norm;
        }
    }
    m
}

/// A `rows×cols` (`rows ≥ cols`) matrix with orthonormal columns: modified Gram–Schmidt,
/// twice, on a Gaussian matrix.
pub fn orthonormal_columns(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f64> {
    assert!(rows >= cols, "orthonormal_columns needs rows ≥ cols");
    let mut m = matrix(rng, rows, cols, StandardNormal);
    for c in 0..cols {
        for _pass in 0..2 {
            for prev in 0..c {
                let dot: f64 = (0..rows)
                    .map(|r| m[r * cols + c] * m[r * cols + prev])
                    .sum();
                for r in 0..rows {
                    m[r * cols + c] -= dot * m[r * cols + prev];
                }
            }
        }
        let norm = (0..rows)
            .map(|r| m[r * cols + c].powi(2))
            .sum::<f64>()
            .sqrt();
        for r in 0..rows {
            m[r * cols + c] /= norm;
        }
    }
    m
}

/// `EᵀE` (`F×F`) of a `D×F` row-major embedding.
pub fn gram(e: &[f64], d: usize, f: usize) -> Vec<f64> {
    let mut g = vec![0.0; f * f];
    for row in e.chunks_exact(f).take(d) {
        for i in 0..f {
            for j in 0..f {
                g[i * f + j] += row[i] * row[j];
            }
        }
    }
    g
}

/// The embedding `W_E` of instance seed `seed`, if the variant has one.
pub fn embedding(cfg: &Config, seed: u64) -> Option<Vec<f64>> {
    if !cfg.variant.has_embedding() {
        return None;
    }
    let mut r = rng(seed, Stream::Embedding);
    Some(if cfg.variant == crate::Variant::EmbResOrth {
        orthonormal_columns(&mut r, cfg.d_emb, cfg.n_feat)
    } else {
        gaussian_unit_columns(&mut r, cfg.d_emb, cfg.n_feat)
    })
}

/// The unscaled mixing matrix `M` (`F×F`; zero diagonal unless `mix_diagonal = keep`) of
/// instance seed `seed`.
pub fn mixing_matrix(cfg: &Config, seed: u64) -> Vec<f64> {
    let f = cfg.n_feat;
    let mut r = rng(seed, Stream::Mixing);
    let mut m = match cfg.mixing {
        Mixing::Asymmetric => matrix(&mut r, f, f, StandardNormal),
        Mixing::Symmetric => {
            let a = matrix(&mut r, f, f, StandardNormal);
            let mut m = vec![0.0; f * f];
            for i in 0..f {
                for j in 0..f {
                    m[i * f + j] = (a[i * f + j] + a[j * f + i]) / 2f64.sqrt();
                }
            }
            m
        }
        Mixing::Rank => {
            let k = cfg.mix_rank;
            let factor = |r: &mut ChaCha8Rng| match cfg.mix_flat_spectrum {
                true => orthonormal_columns(r, f, k),
                false => gaussian_unit_columns(r, f, k),
            };
            let u = factor(&mut r);
            let v = match cfg.mix_rank_form {
                MixRankForm::Uut => u.clone(),
                MixRankForm::Uvt => factor(&mut r),
            };
            let mut m = vec![0.0; f * f];
            for i in 0..f {
                for j in 0..f {
                    m[i * f + j] = (0..k).map(|c| u[i * k + c] * v[j * k + c]).sum();
                }
            }
            m
        }
        Mixing::EmbeddingPlus | Mixing::EmbeddingMinus => {
            let e = gaussian_unit_columns(&mut r, cfg.mix_d_emb, f);
            let sign = if cfg.mixing == Mixing::EmbeddingPlus {
                1.0
            } else {
                -1.0
            };
            gram(&e, cfg.mix_d_emb, f)
                .into_iter()
                .map(|x| sign * x)
                .collect()
        }
    };
    if cfg.mix_diagonal == MixDiagonal::Zero {
        for i in 0..f {
            m[i * f + i] = 0.0;
        }
    }
    m
}

/// Initial parameters of one instance in `layout` order; biases start at 0.
pub fn init_params<T: Scalar>(cfg: &Config, layout: &Layout, seed: u64) -> Vec<T> {
    let mut r = rng(seed, Stream::Init);
    let mut out = vec![T::zero(); layout.len];
    for slot in &layout.slots {
        if slot.shape.len() != 2 {
            continue;
        }
        // Row-major `rows×cols` used as `y = W·x`: fan_in = cols, fan_out = rows.
        let (rows, cols) = (slot.shape[0], slot.shape[1]);
        let (fan_out, fan_in) = (rows as f64, cols as f64);
        let normal = |r: &mut ChaCha8Rng, std: f64| {
            matrix(r, rows, cols, StandardNormal)
                .into_iter()
                .map(move |z| std * z)
                .collect::<Vec<f64>>()
        };
        let values = match cfg.init {
            Init::XavierNormal => normal(&mut r, (2.0 / (fan_in + fan_out)).sqrt()),
            Init::XavierNormalSeed3d => normal(&mut r, seed_3d_xavier_std(fan_out, fan_in)),
            Init::Normal => normal(&mut r, cfg.init_std),
            Init::KaimingUniform => {
                let bound = 1.0 / fan_in.sqrt();
                matrix(&mut r, rows, cols, uniform(-bound, bound))
            }
            Init::Uniform => {
                let bound = match slot.param {
                    Param::W2 => cfg.init_bound_out.unwrap_or(cfg.init_bound),
                    _ => cfg.init_bound,
                };
                matrix(&mut r, rows, cols, uniform(-bound, bound))
            }
        };
        for (w, v) in out[slot.offset..slot.offset + slot.len]
            .iter_mut()
            .zip(values)
        {
            *w = T::from_f64(v);
        }
    }
    out
}

/// The std PyTorch's Xavier-normal gives the seed's `rows×cols` matrix, stored as the 3-D
/// tensor `[1, rows, cols]`: there `fan_in = rows·cols` and `fan_out = 1·cols`, so
/// `std = √(2 / (rows·cols + cols))` (`rows = fan_out`, `cols = fan_in` of `y = W·x`).
fn seed_3d_xavier_std(rows: f64, cols: f64) -> f64 {
    (2.0 / (rows * cols + cols)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_columns_are_unit_and_orthogonal_when_asked() {
        let mut r = rng(7, Stream::Embedding);
        let (d, f) = (40, 12);
        let g = gram(&orthonormal_columns(&mut r, d, f), d, f);
        for i in 0..f {
            for j in 0..f {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (g[i * f + j] - want).abs() < 1e-12,
                    "G[{i},{j}] = {}",
                    g[i * f + j]
                );
            }
        }
        let g = gram(&gaussian_unit_columns(&mut r, d, f), d, f);
        for i in 0..f {
            assert!((g[i * f + i] - 1.0).abs() < 1e-12);
        }
        assert!((0..f * f).any(|i| i % (f + 1) != 0 && g[i].abs() > 1e-3));
    }

    /// The seed's 3-D convention gives W1 (50×1000) and W2 (1000×50) of the TMCC the std
    /// `√(2/(50·1000 + cols))`: 0.006262 and 0.006321.
    #[test]
    fn seed_3d_xavier_std_is_torchs_fan_of_the_3d_tensor() {
        // The seed's W1 is [1, 50, 1000] (neur × emb), its W2 [1, 1000, 50] (emb × neur).
        assert_eq!(seed_3d_xavier_std(50.0, 1000.0), (2.0f64 / 51_000.0).sqrt());
        assert_eq!(seed_3d_xavier_std(1000.0, 50.0), (2.0f64 / 50_050.0).sqrt());
    }

    #[test]
    fn seed_3d_xavier_has_the_seeds_std() {
        let cfg = Config {
            init: Init::XavierNormalSeed3d,
            ..Config::default()
        };
        let layout = Layout::new(50, 1000, false, false, false);
        let w: Vec<f64> = init_params(&cfg, &layout, 0);
        for (slot, want) in layout.slots.iter().zip([0.0062622, 0.0063214]) {
            let v = &w[slot.offset..slot.offset + slot.len];
            let sd = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
            assert!((sd / want - 1.0).abs() < 0.01, "sd {sd} vs {want}");
        }
    }

    #[test]
    fn the_uniform_init_keeps_each_matrix_within_its_bound() {
        let cfg = Config {
            init: Init::Uniform,
            init_bound: 0.01,
            init_bound_out: Some(0.3),
            ..Config::default()
        };
        let layout = Layout::new(cfg.n_hidden, cfg.d_in(), false, false, false);
        let p: Vec<f64> = init_params(&cfg, &layout, 5);
        for (param, bound) in [(Param::W1, 0.01), (Param::W2, 0.3)] {
            let s = layout.get(param).unwrap();
            let w = &p[s.offset..s.offset + s.len];
            let max = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(max < bound && max > 0.95 * bound, "{param:?}: {max}");
        }
    }

    #[test]
    fn mixing_matrices_have_zero_diagonal_and_declared_symmetry() {
        let mut cfg = Config {
            n_feat: 20,
            ..Config::default()
        };
        for mixing in [
            Mixing::Symmetric,
            Mixing::Asymmetric,
            Mixing::Rank,
            Mixing::EmbeddingPlus,
            Mixing::EmbeddingMinus,
        ] {
            cfg.mixing = mixing;
            let m = mixing_matrix(&cfg, 3);
            let f = 20;
            assert!((0..f).all(|i| m[i * f + i] == 0.0));
            let sym = (0..f).all(|i| (0..f).all(|j| (m[i * f + j] - m[j * f + i]).abs() < 1e-12));
            assert_eq!(sym, mixing != Mixing::Asymmetric, "{mixing:?}");
        }
        cfg.mixing = Mixing::Rank;
        cfg.mix_rank_form = MixRankForm::Uvt;
        let m = mixing_matrix(&cfg, 3);
        assert!((0..20).any(|i| (0..20).any(|j| (m[i * 20 + j] - m[j * 20 + i]).abs() > 1e-6)));
        cfg.mix_rank_form = MixRankForm::Uut;
        cfg.mixing = Mixing::EmbeddingPlus;
        let plus = mixing_matrix(&cfg, 3);
        cfg.mixing = Mixing::EmbeddingMinus;
        let minus = mixing_matrix(&cfg, 3);
        assert!(plus.iter().zip(&minus).all(|(a, b)| *a == -*b));
    }

    /// The rank options of the follow-up paper: `U Uᵀ`/`U Vᵀ`, flat or spread spectrum,
    /// with the diagonal kept: the singular values are those of the factors' product (all 1
    /// when flat), and zeroing the diagonal changes only the diagonal.
    #[test]
    fn rank_mixing_forms_spectra_and_the_kept_diagonal() {
        let (f, k) = (12, 3);
        let base = Config {
            variant: crate::Variant::Mix,
            n_feat: f,
            mixing: Mixing::Rank,
            mix_rank: k,
            mix_diagonal: MixDiagonal::Keep,
            ..Config::default()
        };
        let gram = |m: &[f64]| {
            // MᵀM: its trace is Σ s², its square's trace Σ s⁴.
            let mut g = vec![0.0; f * f];
            for i in 0..f {
                for j in 0..f {
                    g[i * f + j] = (0..f).map(|r| m[r * f + i] * m[r * f + j]).sum();
                }
            }
            let tr = (0..f).map(|i| g[i * f + i]).sum::<f64>();
            let tr2 = (0..f * f).map(|i| g[i] * g[i]).sum::<f64>();
            (tr, tr2)
        };
        for form in [MixRankForm::Uut, MixRankForm::Uvt] {
            for flat in [true, false] {
                let cfg = Config {
                    mix_rank_form: form,
                    mix_flat_spectrum: flat,
                    ..base.clone()
                };
                let m = mixing_matrix(&cfg, 5);
                let sym =
                    (0..f).all(|i| (0..f).all(|j| (m[i * f + j] - m[j * f + i]).abs() < 1e-12));
                assert_eq!(sym, form == MixRankForm::Uut, "{form:?} {flat}");
                let (tr, tr2) = gram(&m);
                // Flat: k singular values 1, so Σ s² = Σ s⁴ = k; spread: Σ s⁴ > (Σ s²)²/k.
                if flat {
                    assert!((tr - k as f64).abs() < 1e-9 && (tr2 - k as f64).abs() < 1e-9);
                } else {
                    assert!(
                        tr2 > tr * tr / k as f64 * (1.0 + 1e-6),
                        "{form:?}: {tr} {tr2}"
                    );
                }
                assert!((0..f).any(|i| m[i * f + i].abs() > 1e-3), "diagonal kept");
                let zeroed = mixing_matrix(
                    &Config {
                        mix_diagonal: MixDiagonal::Zero,
                        ..cfg.clone()
                    },
                    5,
                );
                for i in 0..f {
                    for j in 0..f {
                        let want = if i == j { 0.0 } else { m[i * f + j] };
                        assert_eq!(zeroed[i * f + j], want);
                    }
                }
            }
        }
    }
}
