//! The host-side model: `K` instances of one shape, each with its flat parameters, its
//! fixed embedding `W_E` (`D×F`) and its unscaled mixing matrix `M` (`F×F`), all drawn
//! from the instance's seed. The maths of the family (docs/science.md#model-family):
//!
//! ```text
//! u = W_E x            (or u = x)
//! h = act(W1 u + b1)                       (ReLU or GELU)
//! s = W2 h + b2 + r·u  (residual variants)
//! L blocks: block l reads a_l = u + Σ_{m<l} v_m, v_l = W2_l act(W1_l a_l + b1_l) + b2_l,
//!           s = Σ_l v_l + r·u                 (crate::reference)
//! out = W_Eᵀ s         (or out = s)  [+ r·σ·M x for `mix`]
//! out = act(out)       (identity or ReLU)
//! ```
//!
//! In feature space every residual path is one `F×F` matrix applied to `x`: the fast path
//! adds `x·R` with the residual table `R` (row `f` is what feature `f` adds to `out`):
//! `R = r·I` (`res_mlp`), `r·W_EᵀW_E` (`emb_res`, `emb_res_orth`), `r·(I + σM)ᵀ` (`mix`).
//! A `mix` model with `learn_sigma` holds each instance's `σ` as its last parameter
//! ([`Model::sigma`]), initialised to the config's.

use tmcc_kernels::Scalar;

use crate::config::{Config, ConfigError, Variant};
use crate::init;
use crate::layout::{Layout, Param, Slot};

/// The element types a model runs in; `f32` for training, `f64` for gradient checks.
pub trait Float: Scalar + ndarray::LinalgScalar + ndarray::ScalarOperand {}
impl<T: Scalar + ndarray::LinalgScalar + ndarray::ScalarOperand> Float for T {}

/// `K` instances of one model shape, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<T> {
    pub cfg: Config,
    pub layout: Layout,
    /// `K × layout.len`.
    pub params: Vec<T>,
    /// `K × D×F`, embedding variants only.
    pub embed: Option<Vec<T>>,
    /// `K × F×F`, unscaled (`σ` is applied where used), `mix` only.
    pub mixing: Option<Vec<T>>,
}

impl<T: Float> Model<T> {
    /// Validates `cfg` and draws every instance from its seed.
    pub fn new(cfg: &Config) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let layout = Layout::of(cfg);
        let k = cfg.instances;
        let seeds: Vec<u64> = (0..k).map(|i| cfg.instance_seed(i)).collect();
        let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
        let mut params: Vec<T> = seeds
            .iter()
            .flat_map(|&s| init::init_params::<T>(cfg, &layout, s))
            .collect();
        if let Some(slot) = layout.get(Param::Sigma) {
            for i in 0..k {
                params[i * layout.len + slot.offset] = T::from_f64(cfg.instance_sigma(i));
            }
        }
        let embed = cfg.variant.has_embedding().then(|| {
            seeds
                .iter()
                .flat_map(|&s| cast(init::embedding(cfg, s).expect("embedding variant")))
                .collect()
        });
        let mixing = (cfg.variant == Variant::Mix).then(|| {
            seeds
                .iter()
                .flat_map(|&s| cast(init::mixing_matrix(cfg, s)))
                .collect()
        });
        Ok(Self {
            cfg: cfg.clone(),
            layout,
            params,
            embed,
            mixing,
        })
    }

    pub fn instances(&self) -> usize {
        self.cfg.instances
    }

    pub fn instance_params(&self, k: usize) -> &[T] {
        &self.params[k * self.layout.len..(k + 1) * self.layout.len]
    }

    /// Tensor `param` of block 0 of instance `k` (`None` when the model has no such tensor).
    pub fn tensor(&self, k: usize, param: Param) -> Option<&[T]> {
        let s = self.layout.get(param)?;
        Some(&self.instance_params(k)[s.offset..s.offset + s.len])
    }

    /// Tensor `param` of block `block` of instance `k` (`None` when there is none).
    pub fn block_tensor(&self, k: usize, block: usize, param: Param) -> Option<&[T]> {
        let s = self.layout.get_in(block, param)?;
        Some(&self.instance_params(k)[s.offset..s.offset + s.len])
    }

    /// Tensor `param` of block `block` of instance `k`, writable.
    pub fn block_tensor_mut(&mut self, k: usize, block: usize, param: Param) -> Option<&mut [T]> {
        let s = self.layout.get_in(block, param)?.clone();
        let base = k * self.layout.len + s.offset;
        Some(&mut self.params[base..base + s.len])
    }

    /// Tensor `param` of instance `k`, writable.
    pub fn tensor_mut(&mut self, k: usize, param: Param) -> Option<&mut [T]> {
        let s = self.layout.get(param)?.clone();
        let base = k * self.layout.len + s.offset;
        Some(&mut self.params[base..base + s.len])
    }

    pub fn instance_embed(&self, k: usize) -> Option<&[T]> {
        let n = self.cfg.d_emb * self.cfg.n_feat;
        self.embed.as_ref().map(|e| &e[k * n..(k + 1) * n])
    }

    pub fn instance_mixing(&self, k: usize) -> Option<&[T]> {
        let n = self.cfg.n_feat * self.cfg.n_feat;
        self.mixing.as_ref().map(|m| &m[k * n..(k + 1) * n])
    }

    /// The `[K, …]` values of one layout tensor, gathered from the flat `K × P` buffer.
    pub fn slot_values(&self, slot: &Slot) -> Vec<T> {
        (0..self.instances())
            .flat_map(|k| self.instance_params(k)[slot.offset..slot.offset + slot.len].to_vec())
            .collect()
    }

    /// The mixing magnitude `σ` of instance `k`: its trained tensor `sigma` when the model
    /// learns it (`learn_sigma`), else the config's.
    pub fn sigma(&self, k: usize) -> f64 {
        match self.tensor(k, Param::Sigma) {
            Some(s) => s[0].as_f64(),
            None => self.cfg.instance_sigma(k),
        }
    }

    /// The residual table `R` (`F×F`) of instance `k`, or `None` without a residual.
    pub fn residual_table(&self, k: usize) -> Option<Vec<T>> {
        let cfg = &self.cfg;
        if !cfg.variant.has_residual() {
            return None;
        }
        let (f, r) = (cfg.n_feat, cfg.res_factor());
        let mut table = vec![0.0f64; f * f];
        if let Some(e) = self.instance_embed(k) {
            let e: Vec<f64> = e.iter().map(|v| v.as_f64()).collect();
            table = init::gram(&e, cfg.d_emb, f);
        } else {
            for i in 0..f {
                table[i * f + i] = 1.0;
            }
            if let Some(m) = self.instance_mixing(k) {
                let sigma = self.sigma(k);
                for i in 0..f {
                    for j in 0..f {
                        // row i of (I + σM)ᵀ is column i of I + σM
                        table[i * f + j] += sigma * m[j * f + i].as_f64();
                    }
                }
            }
        }
        Some(table.into_iter().map(|v| T::from_f64(r * v)).collect())
    }
}
