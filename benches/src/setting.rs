//! What every measurement is run on: the seed setting (`Config::default()`, the seed
//! notebook's `F`, `H`, `D`, `p`, init and optimiser) with a chosen variant, instance count
//! and batch size, or APD's 2-layer target; the CPU trainer built from it; and deterministic operands for the
//! kernel timings (values in `[-0.5, 0.5)`, no zeros or denormals to favour one kernel).

use anyhow::Result;
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{Gemm, Operand, View};
use tmcc_model::config::{Config, Variant};
use tmcc_model::train::Trainer;
use tmcc_model::Model;

/// Instance counts of the criterion step benchmark (`benches/step.rs`).
pub const CRITERION_STEP_INSTANCES: [usize; 2] = [1, 64];

/// The seed setting with `variant`, `instances` and batch `batch`, training without end
/// (`steps = u64::MAX`: a constant schedule never decays).
pub fn seed_config(variant: Variant, instances: usize, batch: usize) -> Config {
    Config {
        variant,
        instances,
        batch_size: batch,
        steps: u64::MAX,
        ..Config::default()
    }
}

/// APD's 2-layer target (preset `apd-2layer`: `F = 100`, `D = 1000`, two blocks of 25,
/// `B = 2048`, `p = 0.01`, AdamW) as one instance training without end, at a constant
/// learning rate (the PyTorch loop has no schedule).
pub fn apd_2layer_config() -> Result<Config> {
    let mut cfg = tmcc_model::presets::load("apd-2layer")?;
    cfg.instances = 1;
    cfg.steps = u64::MAX;
    cfg.schedule = tmcc_model::config::Schedule::Constant;
    Ok(cfg)
}

/// The seed setting with `variant` and `instances` at the seed's batch size.
pub fn seed_setting(variant: Variant, instances: usize) -> Config {
    seed_config(variant, instances, Config::default().batch_size)
}

/// The CPU trainer of `cfg` (f32).
pub fn trainer(cfg: &Config) -> Result<Trainer<f32, Cpu>> {
    Ok(Trainer::new(Cpu, Model::<f32>::new(cfg)?)?)
}

/// The variant named `name` (`mlp`, `res_mlp`, `emb_mlp`, `emb_res`, `emb_res_orth`, `mix`).
pub fn variant_named(name: &str) -> Result<Variant, String> {
    Variant::ALL
        .into_iter()
        .find(|v| v.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
            format!("unknown variant {name} (one of {})", names.join(", "))
        })
}

/// `n` deterministic values in `[-0.5, 0.5)`; `salt` gives another sequence.
pub fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

/// One product `C = op(A)·op(B)` of packed operands (`op(A)`: `m×k`, `op(B)`: `k×n`,
/// transposed where `ta`, `tb`), one instance, f32.
pub fn product(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Gemm<f32> {
    let op = |t: bool, len: usize| {
        if t {
            Operand::t(View::packed(len))
        } else {
            Operand::n(View::packed(len))
        }
    };
    Gemm {
        batch: 1,
        m,
        n,
        k,
        alpha: 1.0,
        beta: 0.0,
        a: op(ta, m * k),
        b: op(tb, k * n),
        c: View::packed(m * n),
    }
}
