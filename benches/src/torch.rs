//! The PyTorch side of the comparison: `python/torch_step.py` (in this crate's directory)
//! run as a subprocess of `python3`, on the same config as tmcc's step (model, batch,
//! `F`, `H`, `D`, blocks, `p`, `r`, `σ`, optimiser, learning rate, weight decay, passed as
//! flags) and rayon's thread count.
//! The script times each step with `time.perf_counter` after its own warm-up and prints
//! one line of JSON: the median, p10 and p90 step time (same interpolation as
//! [`crate::stats`]) and torch's version and thread count. Exit code 3 means torch cannot
//! be imported: the comparison is then skipped with the script's install hint.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use tmcc_model::config::{Config, Optimizer, Schedule};

use crate::stats::Stats;

/// Untimed PyTorch steps before the timed ones.
pub const WARMUP: usize = 5;

/// The script, found from this crate's directory (not the current directory).
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/torch_step.py")
}

/// One `torch_step.py` run.
#[derive(Clone, Debug)]
pub struct TorchRun {
    pub version: String,
    pub threads: usize,
    pub stats: Stats,
}

/// The outcome of asking for a PyTorch run.
#[derive(Clone, Debug)]
pub enum Torch {
    Ran(TorchRun),
    /// Python or torch is missing: why, and how to install it.
    Missing(String),
}

/// Runs `torch_step.py` for `cfg` (variant `emb_res` of blocks of one width, or `mix`;
/// Adam or AdamW, constant learning rate) with `threads` threads and `steps` timed steps.
pub fn run(cfg: &Config, threads: usize, steps: usize) -> Result<Torch> {
    if cfg.schedule != Schedule::Constant || cfg.warmup_steps > 0 {
        bail!("torch_step.py trains at a constant learning rate only");
    }
    let widths = cfg.widths();
    if widths.iter().any(|&w| w != widths[0]) {
        bail!("torch_step.py takes blocks of one width only");
    }
    let optimizer = match cfg.optimizer {
        Optimizer::Adam => "adam",
        Optimizer::Adamw => "adamw",
    };
    let script = script();
    let num = |v: f64| v.to_string();
    let out = match Command::new("python3")
        .arg(&script)
        .args(["--model", cfg.variant.name()])
        .args(["--batch", &cfg.batch_size.to_string()])
        .args(["--n-feat", &cfg.n_feat.to_string()])
        .args(["--n-hidden", &widths[0].to_string()])
        .args(["--layers", &cfg.n_layers.to_string()])
        .args(["--d-emb", &cfg.d_emb.to_string()])
        .args(["--p", &num(cfg.p)])
        .args(["--res-factor", &num(cfg.res_factor())])
        .args(["--sigma", &num(cfg.sigma)])
        .args(["--optimizer", optimizer])
        .args(["--lr", &num(cfg.lr)])
        .args(["--weight-decay", &num(cfg.weight_decay)])
        .args(["--threads", &threads.to_string()])
        .args([
            "--steps",
            &steps.to_string(),
            "--warmup",
            &WARMUP.to_string(),
        ])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Torch::Missing(
                "`python3` is not on PATH; install Python 3 and torch (benches/python/README.md)"
                    .into(),
            ))
        }
        Err(e) => return Err(e).with_context(|| format!("running python3 {}", script.display())),
    };
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Ok(Torch::Missing(msg));
        }
        _ => bail!(
            "torch_step.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .context("torch_step.py printed nothing")?;
    let v: serde_json::Value = serde_json::from_str(line).context("torch_step.py output")?;
    let num = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("torch_step.py: no `{k}`"))
    };
    Ok(Torch::Ran(TorchRun {
        version: v["torch_version"].as_str().unwrap_or("?").to_string(),
        threads: v["threads"].as_u64().unwrap_or(0) as usize,
        stats: Stats {
            median: num("median_step_s")?,
            p10: num("p10_step_s")?,
            p90: num("p90_step_s")?,
        },
    }))
}
