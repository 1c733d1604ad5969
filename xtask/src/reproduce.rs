//! `cargo xtask reproduce [--quick] [--out DIR] [--device auto|cpu|cuda]`: every claim of
//! the seed and the follow-up paper, with statistics, a report and figures
//! (docs/reproduce/ for the full run; target/reproduce-quick/ for --quick). CPU by default.
//!
//! Thin: runs `cargo run --release -p tmcc-cli --bin tmcc -- reproduce …` from the
//! workspace root with an explicit `--out`, and exits with its status. The `tmcc` it builds
//! has the `cuda` feature (tmcc-cli's default) unless this xtask was built without its own
//! `cuda` feature.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Fewer seeds and steps, same code path (a few minutes on 2 cores); verdicts are
    /// indicative and never fail the command.
    #[arg(long)]
    quick: bool,
    /// Output directory (default: docs/reproduce, or target/reproduce-quick with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to train and evaluate: `cpu` (the default: the committed report and CI run
    /// here), `auto` (CUDA if a device can be used, else the CPU, saying why) or `cuda`.
    #[arg(long, default_value = "cpu", value_name = "auto|cpu|cuda")]
    device: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let out = match args.out {
        // Relative to where `cargo xtask` was called, as the user typed it.
        Some(out) => std::env::current_dir()?.join(out),
        None if args.quick => root.join("target/reproduce-quick"),
        None => root.join("docs/reproduce"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["run", "--release", "-p", "tmcc-cli", "--bin", "tmcc"]);
    if !cfg!(feature = "cuda") {
        cmd.arg("--no-default-features");
    }
    cmd.args(["--", "reproduce", "--command", "cargo xtask reproduce"])
        .args(["--device", &args.device])
        .arg("--out")
        .arg(&out);
    if args.quick {
        cmd.arg("--quick");
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
