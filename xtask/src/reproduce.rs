//! `cargo xtask reproduce [--quick] [--out DIR] [--device auto|cpu|cuda]`: every claim of
//! the seed and the follow-up paper, with statistics, a report and figures
//! (docs/reproduce/ for the full run; target/reproduce-quick/ for --quick). CPU by default.
//!
//! Thin: runs `cargo run --release -p tmcc-cli --bin tmcc -- reproduce …` from the
//! workspace root with an explicit `--out`, and exits with its status. The `tmcc` it builds
//! has tmcc-cli's default features (CUDA support, loaded at run time: `--device cuda`
//! works on a GPU machine, and the CPU is the default everywhere).

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::workspace_root;

/// The options of `tmcc reproduce` (its `--help` says more), passed on as given.
#[derive(clap::Args)]
pub struct Args {
    /// Fewer seeds and steps; output in target/reproduce-quick unless --out says otherwise.
    #[arg(long)]
    quick: bool,
    /// Output directory (default: docs/reproduce; relative to the current directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `cpu` (tmcc's default: the committed report and CI run there), `auto` or `cuda`.
    #[arg(long, value_name = "auto|cpu|cuda")]
    device: Option<String>,
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
    cmd.args([
        "--",
        "reproduce",
        "--command",
        "cargo xtask reproduce",
        "--out",
    ])
    .arg(&out);
    if args.quick {
        cmd.arg("--quick");
    }
    if let Some(device) = &args.device {
        cmd.args(["--device", device]);
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
