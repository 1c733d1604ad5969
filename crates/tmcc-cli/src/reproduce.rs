//! `tmcc reproduce [--quick] [--out DIR] [--device auto|cpu|cuda]`: every claim of the seed
//! and of the follow-up paper, with statistics, a report and figures (the
//! `tmcc-reproduce` crate). Writes `REPORT.md`, `claims.json` and `figures/` into `--out`
//! (default, relative to the current directory: `docs/reproduce`, or
//! `target/reproduce-quick` with `--quick`). CPU by default. `cargo xtask reproduce` runs
//! this command from the workspace root with explicit paths.
//!
//! Progress, the device and one summary line per claim go to stderr. Exits 1, naming the
//! claims, when a claim does not reproduce (never with `--quick`); other errors exit 2.

use std::path::PathBuf;

use tmcc_lab::runner::{Device, DeviceChoice};
use tmcc_reproduce::{run as reproduce, Options, Section};

#[derive(clap::Args)]
pub struct Args {
    /// Fewer seeds and steps, same code path (a few minutes on 2 cores); verdicts are
    /// indicative and never fail the command.
    #[arg(long)]
    quick: bool,
    /// Output directory (default: docs/reproduce, or target/reproduce-quick with --quick,
    /// under the current directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to train and evaluate: `cpu` (the default: the committed report and CI run
    /// here), `auto` (CUDA if a device can be used, else the CPU, saying why) or `cuda`.
    #[arg(long, default_value = "cpu", value_name = "auto|cpu|cuda")]
    device: DeviceChoice,
    /// The name of the command as invoked, quoted in the report with the flags that shape
    /// the run (`cargo xtask reproduce` passes its own).
    #[arg(long, hide = true, default_value = "tmcc reproduce")]
    command: String,
    /// Run only one part: `seed-claims` (claims 1–4), `follow-up` (P1–P5), `apd` (APD's
    /// targets, A1–A5) or `toy-models` (T1–T6); the report then holds only that part (for
    /// measuring one part; not a complete report).
    #[arg(long, hide = true, value_parser = ["seed-claims", "follow-up", "apd", "toy-models"])]
    only: Option<String>,
}

/// `git describe --always --dirty` of the current directory, or `unknown` without git.
fn revision() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let (device, note) = Device::select(args.device).map_err(anyhow::Error::msg)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    eprintln!("device: {}", device.describe());
    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.quick {
            "target/reproduce-quick"
        } else {
            "docs/reproduce"
        })
    });
    let only = args.only.as_deref().map(|s| match s {
        "seed-claims" => Section::SeedClaims,
        "follow-up" => Section::FollowUp,
        "apd" => Section::Apd,
        _ => Section::ToyModels,
    });
    let command = format!(
        "{}{}{}{}",
        args.command,
        if args.quick { " --quick" } else { "" },
        args.only
            .as_deref()
            .map_or(String::new(), |s| format!(" --only {s}")),
        if args.device == DeviceChoice::Cpu {
            String::new()
        } else {
            format!(" --device {}", args.device)
        }
    );
    let outcome = reproduce(&Options {
        quick: args.quick,
        only,
        device,
        revision: revision(),
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
    if failed.is_empty() {
        return Ok(0);
    }
    if args.quick {
        eprintln!("(quick mode: verdicts are indicative; not failing)");
        return Ok(0);
    }
    eprintln!(
        "error: {} claim(s) did not reproduce: {}",
        failed.len(),
        failed.join("; ")
    );
    Ok(1)
}
