//! Peak memory of training `K` instances: each `K` in its own child process (the running
//! binary again, with the hidden flag [`CHILD_FLAG`]), so that one measurement's peak
//! cannot hide another's. The child reads its peak resident set (`VmHWM` of
//! `/proc/self/status`) before building the model and after [`STEPS`] training steps
//! ([`config`]: `emb_res` at the seed setting), and prints both as one line of JSON.
//!
//! A whole-run child ([`RUN_CHILD_FLAG`], [`run_child`]) does what the runner does —
//! training, the final checkpoint (weights and Adam state read back), evaluation on
//! [`RUN_EVAL_SAMPLES`] samples — so that its peak can be set against the estimate of
//! `tmcc_model::memory` ([`estimate`]), which must agree within
//! `tmcc_model::memory::MEASURED_FACTOR`.

use std::process::Command;

use anyhow::{bail, Context, Result};
use tmcc_kernels::cpu::Cpu;
use tmcc_model::config::{Config, Variant};
use tmcc_model::eval::evaluate;
use tmcc_model::fast::FastModel;
use tmcc_model::memory::{Estimate, Placement};

use crate::setting::{seed_setting, trainer};

/// The hidden flag that makes the binary a memory child: `--mem-child K`.
pub const CHILD_FLAG: &str = "--mem-child";
/// Training steps of a child (the last one logs its loss).
pub const STEPS: usize = 3;

/// The hidden flag of a whole-run child: `--mem-run-child K`.
pub const RUN_CHILD_FLAG: &str = "--mem-run-child";
/// Evaluation samples of a whole-run child.
pub const RUN_EVAL_SAMPLES: usize = 20_000;

/// The config a whole-run child runs: [`config`] for [`STEPS`] steps, evaluated on
/// [`RUN_EVAL_SAMPLES`] samples.
pub fn run_config(k: usize) -> Config {
    Config {
        steps: STEPS as u64,
        eval_samples: RUN_EVAL_SAMPLES,
        ..config(k)
    }
}

/// The estimate of [`run_config`]`(k)` on this machine's CPU, bytes.
pub fn estimate(k: usize) -> f64 {
    Estimate::of_run(&run_config(k), Placement::cpu_here())
        .peak(false)
        .1
}

/// The whole-run child: train, read back the checkpoint, evaluate (as the runner does);
/// one JSON line on stdout.
pub fn run_child(k: usize) -> Result<()> {
    let cfg = run_config(k);
    let baseline = vm_hwm_kib()?;
    let mut t = trainer(&cfg)?;
    for i in 0..STEPS {
        t.step(i + 1 == STEPS)?;
    }
    let model = t.snapshot()?;
    let moments = t.read_moments()?;
    drop(t);
    let mut fast = FastModel::new(Cpu, &model)?;
    evaluate(&mut fast, &cfg, cfg.eval_samples, None)?;
    drop((fast, moments));
    let peak = vm_hwm_kib()?;
    println!("{{\"k\": {k}, \"baseline_kib\": {baseline}, \"peak_kib\": {peak}}}");
    Ok(())
}

/// The config a child trains: `k` instances of `emb_res` at the seed setting.
pub fn config(k: usize) -> Config {
    seed_setting(Variant::EmbRes, k)
}

/// `VmHWM` (peak resident set) of this process, KiB.
fn vm_hwm_kib() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    let line = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

/// The child's work: `k` instances, [`STEPS`] steps, one JSON line on stdout.
pub fn child(k: usize) -> Result<()> {
    let baseline = vm_hwm_kib()?;
    let mut t = trainer(&config(k))?;
    for i in 0..STEPS {
        t.step(i + 1 == STEPS)?;
    }
    let peak = vm_hwm_kib()?;
    println!("{{\"k\": {k}, \"baseline_kib\": {baseline}, \"peak_kib\": {peak}}}");
    Ok(())
}

/// The peak memory of one child.
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    pub k: usize,
    /// Peak resident set before the model was built (the binary and its libraries), KiB.
    pub baseline: u64,
    /// Peak resident set after training, KiB.
    pub peak: u64,
}

impl Mem {
    /// Bytes used by training: peak minus baseline.
    pub fn used(&self) -> f64 {
        self.peak.saturating_sub(self.baseline) as f64 * 1024.0
    }
}

/// Runs the child for `k` instances (this executable with `--mem-child k`).
pub fn measure(k: usize) -> Result<Mem> {
    measure_with(CHILD_FLAG, k)
}

/// Runs the whole-run child for `k` instances (`--mem-run-child k`).
pub fn measure_run(k: usize) -> Result<Mem> {
    measure_with(RUN_CHILD_FLAG, k)
}

fn measure_with(flag: &str, k: usize) -> Result<Mem> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args([flag, &k.to_string()]).output()?;
    if !out.status.success() {
        bail!(
            "memory child for K = {k} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())?;
    let num = |key: &str| {
        v[key]
            .as_u64()
            .with_context(|| format!("memory child: `{key}`"))
    };
    Ok(Mem {
        k,
        baseline: num("baseline_kib")?,
        peak: num("peak_kib")?,
    })
}
