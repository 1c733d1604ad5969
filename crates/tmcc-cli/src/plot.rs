//! `tmcc plot DIR`: the standard figures of a run directory (or checkpoint) or of a sweep
//! directory, as PNG (or SVG when `--out` ends in `.svg`).
//!
//! Run directory, `--kind`:
//! - `loss`: training loss / naive against step, per instance (`metrics.json`, or
//!   `progress.json` of an unfinished run);
//! - `response`: every feature's `out_i − r·v` against `v` next to `ReLU(v)`, per instance
//!   (computed on `--device`);
//! - `weights`: per-feature read-in and write-out norms, per instance;
//! - `mix`: `W_out·W_in` in feature space next to `σ·M` (`mix`) or `N = W_EᵀW_E − I`
//!   (embedding variants) for one instance (`--instance`);
//! - `auto` (default): every one that applies, into `DIR/figures/` (or the folder `--out`).
//!
//! Sweep directory (`results.json`): loss/naive against the swept field `--x` (default `p`,
//! `sigma`, `d_emb`, `n_hidden`, else the first swept field), one series per value of the
//! other swept fields, mean ± SE over seeds (or the evaluation's SE for single runs).

use std::path::{Path, PathBuf};

use anyhow::Context;
use tmcc_lab::figures::{
    default_sweep_x, loss_curve_chart, mixing_reference, panels, product_heatmaps, response_panel,
    sweep_chart, weight_panel,
};
use tmcc_lab::response::{response, Counts};
use tmcc_lab::rundir::{load_checkpoint, RunDir, FIGURES};
use tmcc_lab::sweep::{Results, SweepDir, RESULTS_JSON};

use crate::device_arg::DeviceArg;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Auto,
    Loss,
    Response,
    Weights,
    Mix,
    Sweep,
}

#[derive(clap::Args)]
pub struct Args {
    /// A run directory, a checkpoint file, or a sweep directory.
    pub dir: PathBuf,
    /// Output file (a folder for `--kind auto` of a run); default under DIR/figures/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Sweep: the swept field on the x axis.
    #[arg(long)]
    pub x: Option<String>,
    /// Which figure.
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    pub kind: Kind,
    /// Instance of the `mix` figure.
    #[arg(long, default_value_t = 0)]
    pub instance: usize,
    /// Most instances shown as panels in the response and weight figures.
    #[arg(long, default_value_t = 6)]
    pub max_panels: usize,
    /// Grid points of the response.
    #[arg(long, default_value_t = 41)]
    pub points: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

fn ensure_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if SweepDir::is_sweep_dir(&args.dir) {
        return plot_sweep(&args);
    }
    anyhow::ensure!(
        args.x.is_none(),
        "--x applies to sweep directories; {} is not one (no {RESULTS_JSON})",
        args.dir.display()
    );
    anyhow::ensure!(
        args.kind != Kind::Sweep,
        "--kind sweep needs a sweep directory; {} has no {RESULTS_JSON}",
        args.dir.display()
    );
    plot_run(&args)
}

fn plot_sweep(args: &Args) -> anyhow::Result<i32> {
    anyhow::ensure!(
        matches!(args.kind, Kind::Auto | Kind::Sweep),
        "{} is a sweep directory: --kind {:?} needs a run directory, e.g. one under {}/runs/",
        args.dir.display(),
        args.kind,
        args.dir.display()
    );
    let results = Results::read(&args.dir)?;
    anyhow::ensure!(
        !results.rows.is_empty(),
        "{} has no rows yet",
        args.dir.display()
    );
    let x = match &args.x {
        Some(x) => x.clone(),
        None => default_sweep_x(&results)
            .context("the sweep has no swept field; nothing to plot against")?,
    };
    let chart = sweep_chart(&results, &x)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.dir
            .join(FIGURES)
            .join(format!("loss_over_naive_vs_{x}.png"))
    });
    ensure_parent(&out)?;
    chart.draw(&out)?;
    outln!("{}", out.display());
    Ok(0)
}

fn plot_run(args: &Args) -> anyhow::Result<i32> {
    let ck = load_checkpoint(&args.dir)?;
    let model = &ck.model;
    let cfg = &model.cfg;
    let run_dir = RunDir::holding(&args.dir);
    let kinds: Vec<Kind> = match args.kind {
        Kind::Auto => {
            let mut k = Vec::new();
            if run_dir.loss_curve().is_ok() {
                k.push(Kind::Loss);
            }
            k.extend([Kind::Response, Kind::Weights]);
            if mixing_reference(model, 0).is_some() {
                k.push(Kind::Mix);
            }
            k
        }
        k => vec![k],
    };
    let path_of = |kind: Kind| -> PathBuf {
        let name = format!("{}.png", format!("{kind:?}").to_lowercase());
        match (&args.out, args.kind) {
            (Some(out), Kind::Auto) => out.join(name),
            (Some(out), _) => out.clone(),
            (None, _) => run_dir.file(FIGURES).join(name),
        }
    };
    let shown = cfg.instances.min(args.max_panels.max(1));
    let label = |k: usize| {
        format!(
            "instance {k} (seed {}, p {})",
            cfg.instance_seed(k),
            cfg.instance_p(k)
        )
    };
    for kind in kinds {
        let path = path_of(kind);
        ensure_parent(&path)?;
        match kind {
            Kind::Loss => {
                let log = run_dir.loss_curve()?;
                anyhow::ensure!(
                    !log.is_empty(),
                    "the loss curve of {} is empty",
                    run_dir.path.display()
                );
                let title = format!("{} — training loss / naive", cfg.variant.name());
                tmcc_plot::line_chart(&path, &loss_curve_chart(&title, cfg, &log))?;
            }
            Kind::Response => {
                anyhow::ensure!(args.points >= 3, "--points must be ≥ 3");
                let resp = response(&args.device.select()?, model, args.points)?;
                let task = cfg.task();
                let charts: Vec<_> = (0..shown)
                    .map(|k| {
                        let c = Counts::of(&resp[k]);
                        response_panel(
                            &format!(
                                "#{k} s{} p{}: {} comp, {} zero, {} partial",
                                cfg.instance_seed(k),
                                cfg.instance_p(k),
                                c.computed,
                                c.zero,
                                c.partial
                            ),
                            &task,
                            &resp[k],
                        )
                    })
                    .collect();
                panels(
                    &path,
                    &format!("{} — input–output response", cfg.variant.name()),
                    &charts,
                )?;
            }
            Kind::Weights => {
                let charts = (0..shown)
                    .map(|k| weight_panel(&label(k), model, k))
                    .collect::<Result<Vec<_>, _>>()?;
                panels(
                    &path,
                    &format!("{} — weights per feature", cfg.variant.name()),
                    &charts,
                )?;
            }
            Kind::Mix => {
                anyhow::ensure!(
                    args.instance < cfg.instances,
                    "--instance {} but the model has {} instance(s)",
                    args.instance,
                    cfg.instances
                );
                let maps = product_heatmaps(model, args.instance)?;
                tmcc_plot::heatmaps_side_by_side(
                    &path,
                    &format!("{} — {}", cfg.variant.name(), label(args.instance)),
                    &maps,
                )?;
            }
            Kind::Auto | Kind::Sweep => unreachable!("resolved above"),
        }
        outln!("{}", path.display());
    }
    Ok(0)
}
