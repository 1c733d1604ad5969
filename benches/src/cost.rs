//! What a step should cost, counted from the config rather than measured: the
//! multiply-adds per step of tmcc's fast path and of the dense PyTorch loop (so a measured
//! step time becomes a rate to hold against the matrix-multiply rate), and the memory one
//! instance needs at least (its weights, gradients, Adam state and batch), against which
//! the measured peak resident memory is compared. Counts are for the models of the bench
//! (`emb_res` of one or more blocks, `mix`: no biases, untied).

use tmcc_model::config::{Config, Variant};

/// The terms of [`tmcc_macs`], as the report writes them.
pub const TMCC_MACS_TEXT: &str = "`4·F·D·H` (`Aᵀ = W_EᵀW1ᵀ`, `C = W_EᵀW2`, `dW1 = dAᵀᵀW_Eᵀ`, `dW2 = W_E·dC`) + `2·B·H²` (`hᵀh`, `h·M`) + `4·F²·H` (`Ĉ = σ·diag(imp)·C`, `P = R·Ĉ`, `Rᵀ(xᵀh)`, `dC`) + `2·F·H²` (`M = CᵀĈ`, `C·hᵀh`) + `6·nnz·H` (gathers and scatters); `mix`: the same without `4·F·D·H`";

/// The terms of [`tmcc_macs`] for `L > 1` blocks, as the report writes them.
pub const TMCC_DEEP_MACS_TEXT: &str = "`Σ_l (4·F·D·H_l + 3·B·F·H_l + 6·nnz·H_l)` (the products with `W_E`; `z = Σ h_l C_lᵀ`, `dC_l`, `dh_l`; gathers and scatters) + `Σ_{m<l} (3·D + 2·B)·H_l·H_m` (`G_{l,m} = W1_l W2_m`, its two weight gradients, `h_m G_{l,m}ᵀ`, `dpre_l G_{l,m}`, `dG_{l,m}`)";

/// The terms of [`torch_macs`] for `L > 1` blocks, as the report writes them.
pub const TORCH_DEEP_MACS_TEXT: &str = "forward `2·B·D·F + 2·B·D·ΣH_l`, backward `B·D·F + 3·B·D·ΣH_l + B·D·(ΣH_l − H_0)` (`ds`; per block `dW2`, `dh`, `dW1`; the stream gradient of every block after the first)";

/// The terms of [`torch_macs`], as the report writes them.
pub const TORCH_MACS_TEXT: &str = "forward `2·B·D·F + 2·B·D·H` (`W_E x`, `W1 u`, `W2 h`, `W_Eᵀ s`), backward `B·D·F + 3·B·D·H` (`ds`, `dW2`, `dh`, `dW1`); `mix`: `5·B·F·H + B·F²`";

/// Multiply-adds per step of tmcc's path (sparse inputs, hidden-space gradient):
/// [`TMCC_MACS_TEXT`], with `nnz = B·F·p` active inputs.
pub fn tmcc_macs(cfg: &Config) -> f64 {
    if cfg.n_layers > 1 {
        return tmcc_deep_macs(cfg);
    }
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

/// Multiply-adds per step of tmcc's path for `L > 1` blocks (sparse inputs, plain
/// backward pass): [`TMCC_DEEP_MACS_TEXT`].
fn tmcc_deep_macs(cfg: &Config) -> f64 {
    let (b, f) = (cfg.batch_size as f64, cfg.n_feat as f64);
    let d = cfg.d_in() as f64;
    let nnz = b * f * cfg.p;
    let emb = if cfg.variant.has_embedding() {
        4.0 * f * d
    } else {
        0.0
    };
    let widths: Vec<f64> = cfg.widths().iter().map(|&w| w as f64).collect();
    let mut macs = 0.0;
    for (l, &h) in widths.iter().enumerate() {
        macs += (emb + 3.0 * b * f + 6.0 * nnz) * h;
        let earlier: f64 = widths[..l].iter().sum();
        macs += (3.0 * d + 2.0 * b) * h * earlier;
    }
    macs
}

/// Multiply-adds per step of the dense PyTorch loop (`torch_step.py`): [`TORCH_MACS_TEXT`]
/// ([`TORCH_DEEP_MACS_TEXT`] for `L > 1` blocks).
pub fn torch_macs(cfg: &Config) -> f64 {
    if cfg.n_layers > 1 {
        let (b, f, d) = (cfg.batch_size as f64, cfg.n_feat as f64, cfg.d_emb as f64);
        let widths = cfg.widths();
        let sum = widths.iter().sum::<usize>() as f64;
        return 3.0 * b * d * f + 5.0 * b * d * sum + b * d * (sum - widths[0] as f64);
    }
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
        // APD's 2-layer target: Σ_l (4·F·D + 3·B·F + 6·nnz)·25 + (3·D + 2·B)·25².
        let apd = crate::setting::apd_2layer_config().unwrap();
        assert_eq!(format!("{:.3e}", tmcc_macs(&apd)), "5.577e7");
        assert_eq!(format!("{:.3e}", torch_macs(&apd)), "1.178e9");
    }
}
