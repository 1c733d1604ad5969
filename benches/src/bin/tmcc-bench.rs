//! `tmcc-bench` (run by `cargo xtask bench`): tmcc's CPU training step against PyTorch,
//! timed in one run on this machine, with the multiply-add count of each path against the
//! measured matrix-multiply rate, the cost of many instances side by side, and peak memory.
//!
//! Everything is measured in the same invocation, in this order: the matrix-multiply rate
//! ([`timing::MatmulTimer`], in blocks spread over the run); per model of
//! [`step_cases`], tmcc's `Trainer::step`, PyTorch's loop ([`torch`]) and tmcc again,
//! pooled, so that a change of load shows in both; instances side by side
//! ([`SideBySide`]); peak memory per instance count ([`memory`], one child process each).
//! The report ([`report`]) goes to stdout, and with `--write` also to
//! `docs/performance.md` (temporary file + rename).

use anyhow::{Context, Result};
use clap::Parser;
use tmcc_benches::machine::{load_average, Machine};
use tmcc_benches::memory::{self, Mem};
use tmcc_benches::report::{self, Results, StepRow};
use tmcc_benches::setting::{apd_2layer_config, seed_config, trainer};
use tmcc_benches::stats::Stats;
use tmcc_benches::timing::{self, SideBySide};
use tmcc_benches::{torch, workspace_root};
use tmcc_model::config::{Config, Variant};

/// The models of the step comparison: the seed setting's `emb_res` (B = 1024) and `mix`
/// (B = 2048), and APD's 2-layer target (preset `apd-2layer`, B = 2048).
fn step_cases() -> Result<Vec<Config>> {
    Ok(vec![
        seed_config(Variant::EmbRes, 1, 1024),
        seed_config(Variant::Mix, 1, 2048),
        apd_2layer_config()?,
    ])
}
/// Fewest timed tmcc steps, and fewest PyTorch steps.
const MIN_STEPS: usize = 30;
/// PyTorch runs this fraction of the tmcc steps (it is the slower loop).
const TORCH_STEP_DIVISOR: usize = 5;

/// Time tmcc's training step against PyTorch on this machine.
#[derive(Parser)]
#[command(name = "tmcc-bench")]
struct Args {
    /// Also write the report to docs/performance.md.
    #[arg(long)]
    write: bool,
    /// Timed tmcc steps per measurement (the PyTorch loop runs a fifth of these, ≥ 30).
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Instance counts of the peak-memory measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    mem_instances: Vec<usize>,
    /// Skip the PyTorch comparison.
    #[arg(long)]
    no_torch: bool,
    /// Only set the memory estimate against the measured peak of whole runs (at the
    /// `--mem-instances` counts); fails when they differ by more than the stated factor.
    #[arg(long)]
    estimate_only: bool,
    /// Internal: measure peak memory of `K` instances and print one JSON line.
    #[arg(long = &memory::CHILD_FLAG[2..], hide = true)]
    mem_child: Option<usize>,
    /// Internal: measure peak memory of a whole run of `K` instances.
    #[arg(long = &memory::RUN_CHILD_FLAG[2..], hide = true)]
    mem_run_child: Option<usize>,
}

/// The command that reproduces this run, as the report states it (`--write` left out).
fn command_line() -> String {
    let mut parts = vec!["cargo xtask bench".to_string()];
    parts.extend(std::env::args().skip(1).filter(|a| a != "--write"));
    parts.join(" ")
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(k) = args.mem_child {
        return memory::child(k);
    }
    if let Some(k) = args.mem_run_child {
        return memory::run_child(k);
    }
    if args.estimate_only {
        let runs = estimates(&args.mem_instances)?;
        print!("{}", report::estimate_table(&runs)?);
        return report::check_estimates(&runs).map_err(anyhow::Error::msg);
    }
    let machine = Machine::now();
    let threads = machine.rayon_threads;
    let steps = args.steps.max(MIN_STEPS);
    let torch_steps = (steps / TORCH_STEP_DIVISOR).max(MIN_STEPS);
    let cases = step_cases()?;
    let stages = cases.len() + 4;
    let mut stage = 0;
    let mut progress = |what: &str| {
        stage += 1;
        eprintln!("[{stage}/{stages}] {what}");
    };

    let load_before = load_average();
    progress("matrix-multiply rate");
    let mut matmul = timing::MatmulTimer::default();
    matmul.block()?;

    let mut rows = Vec::new();
    let mut torch_missing = None;
    let mut torch_version = None;
    for (i, cfg) in cases.into_iter().enumerate() {
        let b = cfg.batch_size;
        progress(&format!(
            "{} B={b}: tmcc, PyTorch, tmcc",
            report::model_name(&cfg)
        ));
        if i > 0 {
            matmul.block()?;
        }
        let mut t = trainer(&cfg)?;
        let mut times = timing::time_steps(&mut t, steps / 2)?;
        let torch = if args.no_torch {
            None
        } else {
            match torch::run(&cfg, threads, torch_steps)? {
                torch::Torch::Ran(r) => {
                    torch_version = Some(format!("{} ({} threads)", r.version, r.threads));
                    Some(r.stats)
                }
                torch::Torch::Missing(msg) => {
                    torch_missing = Some(msg);
                    None
                }
            }
        };
        times.extend(timing::time_steps(&mut t, steps - steps / 2)?);
        rows.push(StepRow {
            cfg,
            tmcc: Stats::of(times),
            torch,
        });
    }

    progress(&format!(
        "{k} instances side by side vs {k} single-instance steps (interleaved)",
        k = SideBySide::K
    ));
    let side = SideBySide::measure(SideBySide::VARIANT, SideBySide::K, SideBySide::ROUNDS)?;
    matmul.block()?;
    let matmul = matmul.finish();

    progress("peak memory (child processes)");
    let mems = args
        .mem_instances
        .iter()
        .map(|&k| memory::measure(k))
        .collect::<Result<Vec<_>>>()?;

    let runs = estimates(&args.mem_instances)?;
    let load_after = load_average();
    progress("report");
    let report = report::render(&Results {
        command: command_line(),
        machine,
        load_before,
        load_after,
        torch_version,
        torch_missing: torch_missing.clone(),
        matmul,
        steps,
        torch_steps,
        rows,
        side,
        mems,
        runs: runs.clone(),
    })?;
    print!("{report}");
    if args.write {
        let root = workspace_root();
        let path = root.join("docs/performance.md");
        let tmp = root.join("docs/.performance.md.tmp");
        std::fs::create_dir_all(root.join("docs"))?;
        std::fs::write(&tmp, &report).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(msg) = torch_missing {
        eprintln!("note: PyTorch comparison skipped; {msg}");
    }
    report::check_estimates(&runs).map_err(anyhow::Error::msg)
}

/// The measured peak of a whole run per instance count, with its estimate (bytes).
fn estimates(ks: &[usize]) -> Result<Vec<(Mem, f64)>> {
    ks.iter()
        .map(|&k| Ok((memory::measure_run(k)?, memory::estimate(k))))
        .collect()
}
