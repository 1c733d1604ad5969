//! `cargo xtask reproduce [--quick] [--device auto|cpu|cuda]`: every claim of the seed,
//! with statistics, a report and figures (docs/reproduce/ for the full run;
//! target/reproduce-quick/ for --quick). CPU by default.

use std::path::PathBuf;

use tmcc_lab::run::{Device, DeviceChoice};
use tmcc_reproduce::{run as reproduce, Options};

use crate::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Fewer seeds and steps, same code path (about 2 minutes); verdicts are indicative and
    /// never fail the command.
    #[arg(long)]
    quick: bool,
    /// Output directory (default: docs/reproduce, or target/reproduce-quick with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to train and evaluate: `cpu` (the default: the committed report and CI run
    /// here), `auto` (CUDA if a device can be used, else the CPU, saying why) or `cuda`.
    #[arg(long, default_value = "cpu", value_name = "auto|cpu|cuda")]
    device: DeviceChoice,
}

/// `git describe --always --dirty` of the workspace, or `unknown` without git.
fn revision(root: &std::path::Path) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (device, note) = Device::select(args.device).map_err(anyhow::Error::msg)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    eprintln!("device: {}", device.describe());
    let root = workspace_root();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        if args.quick {
            root.join("target/reproduce-quick")
        } else {
            root.join("docs/reproduce")
        }
    });
    let command = format!(
        "cargo xtask reproduce{}{}",
        if args.quick { " --quick" } else { "" },
        if args.device == DeviceChoice::Cpu {
            String::new()
        } else {
            format!(" --device {}", args.device)
        }
    );
    let outcome = reproduce(&Options {
        quick: args.quick,
        device,
        revision: revision(&root),
        out_dir: out_dir.clone(),
        command,
    })?;
    eprintln!(
        "\nwrote {} in {:.0} s",
        out_dir.join("REPORT.md").display(),
        outcome.seconds
    );
    let failed: Vec<String> = outcome
        .claims
        .iter()
        .filter(|c| !c.holds)
        .map(|c| format!("claim {} ({}): {}", c.id, c.setting, c.verdict))
        .collect();
    for c in &outcome.claims {
        eprintln!(
            "claim {:<3} {}  {}",
            c.id,
            if c.holds { "holds " } else { "FAILS " },
            c.verdict
        );
    }
    if !failed.is_empty() {
        if args.quick {
            eprintln!("(quick mode: verdicts are indicative; not failing)");
        } else {
            anyhow::bail!(
                "{} claim(s) did not reproduce: {}",
                failed.len(),
                failed.join("; ")
            );
        }
    }
    Ok(())
}
