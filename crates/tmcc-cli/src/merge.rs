//! `tmcc merge OUT SHARD_DIR...`: join the results of the shards of one sweep
//! (`tmcc_lab::sweep::SweepDir::merge`). Refuses, with a one-line error, shards of
//! different sweeps (sweep hash, grid), shards with different shard counts, incomplete
//! shards, duplicate or missing shards.

use std::path::PathBuf;

use tmcc_lab::sweep::SweepDir;

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
    let (dir, merged) = SweepDir::merge(&args.out, args.force, &args.shards)?;
    eprintln!(
        "merged {} shards ({} rows, sweep {}) into {}",
        args.shards.len(),
        merged.rows.len(),
        merged.sweep_hash,
        dir.results_csv().display()
    );
    Ok(0)
}
