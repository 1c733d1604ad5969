//! `cargo xtask reproduce`: every claim of the seed, with statistics, a report and figures.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask reproduce` is not built yet")
}
