//! `cargo xtask bench [ARGS]`: runs the `tmcc-bench` binary of the benches crate
//! (`cargo run --release -p tmcc-benches --bin tmcc-bench -- ARGS`) from the workspace
//! root and exits with its status. Every argument is passed through unread; the flags
//! (`--write`, `--steps N`, `--mem-instances K,K,…`, `--no-torch`) and what is measured
//! are documented in `benches/src/bin/tmcc-bench.rs` (`cargo xtask bench --help`).

use std::process::Command;

use anyhow::{Context, Result};

use crate::workspace_root;

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Arguments of `tmcc-bench` (see `cargo xtask bench --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args([
            "run",
            "--release",
            "-p",
            "tmcc-benches",
            "--bin",
            "tmcc-bench",
            "--",
        ])
        .args(&args.args)
        .status()
        .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
    if !status.success() {
        // The child has said why; pass its exit code on (1 if it was killed by a signal).
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
