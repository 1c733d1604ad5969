//! `tmcc merge OUT SHARD_DIR...`: join the results of the shards of one sweep. Refuses,
//! with a one-line error, shards of different sweeps (sweep hash, grid), shards with
//! different shard counts, incomplete shards, duplicate or missing shards.

use std::path::PathBuf;

use anyhow::Context;
use tmcc_lab::rundir::RunDir;
use tmcc_lab::sweep::{merge, Results, RESULTS_CSV, SWEEP_FILE};
use tmcc_model::io::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    /// Output directory of the merged table (must not exist unless --force).
    pub out: PathBuf,
    /// The sweep directories of the shards (`tmcc sweep --shard K/N --out DIR`).
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut parts = Vec::new();
    for d in &args.shards {
        let dir = d
            .canonicalize()
            .with_context(|| format!("shard directory {}", d.display()))?;
        let r = Results::read(&dir)?;
        parts.push((dir, r));
    }
    if let Ok(out) = args.out.canonicalize() {
        if let Some((d, _)) = parts.iter().find(|(d, _)| d.starts_with(&out)) {
            anyhow::bail!(
                "output directory {} holds shard directory {}; choose another output",
                args.out.display(),
                d.display()
            );
        }
    }
    let merged = merge(&parts)?;
    let sweep_text = std::fs::read(parts[0].0.join(SWEEP_FILE)).ok();
    let dir = RunDir::create(&args.out, args.force)?;
    if let Some(t) = sweep_text {
        write_atomic(&dir.file(SWEEP_FILE), &t)?;
    }
    merged.write(&dir.path)?;
    eprintln!(
        "merged {} shards ({} rows, sweep {}) into {}",
        parts.len(),
        merged.rows.len(),
        merged.sweep_hash,
        dir.file(RESULTS_CSV).display()
    );
    Ok(0)
}
