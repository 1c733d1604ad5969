//! Peak memory of training `K` instances: each `K` in its own child process (the running
//! binary again, with the hidden flag [`CHILD_FLAG`]), so that one measurement's peak
//! cannot hide another's. The child reads its peak resident set (`VmHWM` of
//! `/proc/self/status`) before building the model and after [`STEPS`] training steps
//! ([`config`]: `emb_res` at the seed setting), and prints both as one line of JSON.

use std::process::Command;

use anyhow::{bail, Context, Result};
use tmcc_model::config::{Config, Variant};

use crate::setting::{seed_setting, trainer};

/// The hidden flag that makes the binary a memory child: `--mem-child K`.
pub const CHILD_FLAG: &str = "--mem-child";
/// Training steps of a child (the last one logs its loss).
pub const STEPS: usize = 3;

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
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args([CHILD_FLAG, &k.to_string()])
        .output()?;
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
