//! What a step should cost, counted from the config rather than measured: the
//! multiply-adds per step of tmcc's fast path and of the dense PyTorch loop (so a measured
//! step time becomes a rate to hold against the matrix-multiply rate), and the memory one
//! instance needs at least (its weights, gradients, Adam state and batch), against which
//! the measured peak resident memory is compared. Counts are for the seed variants of the
//! bench (`emb_res`, `mix`: no biases, untied).

use tmcc_model::config::{Config, Variant};

/// The terms of [`tmcc_macs`], as the report writes them.
pub const TMCC_MACS_TEXT: &str = "`4·F·D·H` (`Aᵀ = W_EᵀW1ᵀ`, `C = W_EᵀW2`, `dW1 = dAᵀᵀW_Eᵀ`, `dW2 = W_E·dC`) + `2·B·H²` (`hᵀh`, `h·M`) + `4·F²·H` (`Ĉ = σ·diag(imp)·C`, `P = R·Ĉ`, `Rᵀ(xᵀh)`, `dC`) + `2·F·H²` (`M = CᵀĈ`, `C·hᵀh`) + `6·nnz·H` (gathers and scatters); `mix`: the same without `4·F·D·H`";

/// The terms of [`torch_macs`], as the report writes them.
pub const TORCH_MACS_TEXT: &str = "forward `2·B·D·F + 2·B·D·H` (`W_E x`, `W1 u`, `W2 h`, `W_Eᵀ s`), backward `B·D·F + 3·B·D·H` (`ds`, `dW2`, `dh`, `dW1`); `mix`: `5·B·F·H + B·F²`";

/// Multiply-adds per step of tmcc's path (sparse inputs, hidden-space gradient):
/// [`TMCC_MACS_TEXT`], with `nnz = B·F·p` active inputs.
pub fn tmcc_macs(cfg: &Config) -> f64 {
    let (b, f, h) = (
        cfg.batch_size as f64,
        cfg.n_feat as f64,
        cfg.n_hidden as f64,
    );
    let nnz = b * f * cfg.p;
    let emb = if cfg.variant.has_embedding() {
        4.0 * f * cfg.d_emb as f64 * h
    } else {
        0.0
    };
    emb + 2.0 * b * h * h + 4.0 * f * f * h + 2.0 * f * h * h + 6.0 * nnz * h
}

/// Multiply-adds per step of the dense PyTorch loop (`torch_step.py`): [`TORCH_MACS_TEXT`].
pub fn torch_macs(cfg: &Config) -> f64 {
    let (b, f, h, d) = (
        cfg.batch_size as f64,
        cfg.n_feat as f64,
        cfg.n_hidden as f64,
        cfg.d_emb as f64,
    );
    match cfg.variant {
        Variant::EmbRes => 3.0 * b * d * f + 5.0 * b * d * h,
        _ => 5.0 * b * f * h + b * f * f,
    }
}

/// The memory one `emb_res` instance needs, bytes (f32).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Trained parameters (`W1`, `W2`).
    pub params: usize,
    /// Weights, gradients and Adam `m`, `v` of the trained parameters.
    pub state: f64,
    /// The fixed `W_E` (`D×F`) and residual table `R` (`F×F`).
    pub fixed: f64,
    /// One batch's inputs as a dense `B×F` array.
    pub dense: f64,
    /// One batch as CSR (row pointers and `B·F·p` (column, value) pairs).
    pub csr: f64,
}

impl Budget {
    pub fn of(cfg: &Config) -> Budget {
        let (f, h, d, b) = (cfg.n_feat, cfg.n_hidden, cfg.d_emb, cfg.batch_size);
        let params = 2 * h * d;
        Budget {
            params,
            state: 4.0 * params as f64 * 4.0,
            fixed: (d * f + f * f) as f64 * 4.0,
            dense: (b * f) as f64 * 4.0,
            csr: (b + 1) as f64 * 4.0 + (b as f64 * f as f64 * cfg.p) * 8.0,
        }
    }
    /// The full budget: state, fixed matrices and a dense batch.
    pub fn full(&self) -> f64 {
        self.state + self.fixed + self.dense
    }
    /// The bare budget: state and the CSR batch only.
    pub fn bare(&self) -> f64 {
        self.state + self.csr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setting::seed_config;

    #[test]
    fn counts_at_the_seed_setting() {
        // The numbers of docs/performance.md.
        let e = seed_config(Variant::EmbRes, 1, 1024);
        let m = seed_config(Variant::Mix, 1, 2048);
        assert_eq!(format!("{:.3e}", tmcc_macs(&e)), "2.793e7");
        assert_eq!(format!("{:.3e}", torch_macs(&e)), "5.632e8");
        assert_eq!(format!("{:.3e}", tmcc_macs(&m)), "1.335e7");
        assert_eq!(format!("{:.3e}", torch_macs(&m)), "7.168e7");
        assert_eq!(Budget::of(&e).params, 100_000);
    }
}
