//! `cargo xtask bench`: tmcc's training step against PyTorch, timed in one run.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench` is not built yet")
}
