//! `cargo xtask <command>`: project automation (matklad's xtask pattern). One file per
//! subcommand; the workspace root is found from this crate's manifest directory, so it
//! runs from any directory.

mod bench;
mod reproduce;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "tmcc project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce every claim of the seed (and the follow-up paper) with statistics, through
    /// `tmcc reproduce`, writing docs/reproduce/REPORT.md, claims.json and the figures.
    Reproduce(reproduce::Args),
    /// Time tmcc's training step against PyTorch on this machine.
    Bench(bench::Args),
}

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Reproduce(args) => reproduce::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
