//! `tmcc transplant CHECKPOINT --out DIR`: fold the embedding of an `emb_res` /
//! `emb_res_orth` (→ `res_mlp`) or `emb_mlp` (→ `mlp`) model into its weights
//! (`W1' = W1·W_E`, `W2' = W_Eᵀ·W2`, `b2' = W_Eᵀ·b2`), evaluate the model and its transplant
//! on the same evaluation stream, and write the transplanted model (`config.toml`,
//! `checkpoint.safetensors`, with no optimizer state) and `transplant.json`.

use std::path::PathBuf;

use serde::Serialize;
use tmcc_lab::runner::eval_model;

use crate::device_arg::DeviceArg;
use tmcc_lab::rundir::{checkpoint_path, load_checkpoint, RunDir};
use tmcc_lab::transplant::transplant;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::eval::InstanceEval;

/// File of the comparison.
pub const TRANSPLANT_JSON: &str = "transplant.json";

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint of an embedding variant, or a run directory holding one.
    pub checkpoint: PathBuf,
    /// Output directory (must not exist unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub force: bool,
    /// Evaluation samples (default: the config's eval_samples).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Serialize)]
struct Pair {
    instance: usize,
    seed: u64,
    p: f64,
    original: InstanceEval,
    transplant: InstanceEval,
    /// `loss/naive + 2·SE < 1` for the transplant.
    transplant_beats_naive: bool,
}

#[derive(Serialize)]
struct Comparison {
    source: String,
    source_variant: String,
    target_variant: String,
    res_factor: f64,
    source_step: u64,
    samples: usize,
    eval_seed: u64,
    rule: &'static str,
    instances: Vec<Pair>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let ck = load_checkpoint(&args.checkpoint)?;
    let cfg = &ck.model.cfg;
    let moved = transplant(&ck.model)?;
    let samples = args.samples.unwrap_or(cfg.eval_samples);
    anyhow::ensure!(samples >= 1, "--samples must be ≥ 1");
    // Both at each instance's training p on the stream of eval_seed: the same samples.
    let device = args.device.select()?;
    let before = eval_model(&device, &ck.model, samples, None)?;
    let after = eval_model(&device, &moved, samples, None)?;
    let dir = RunDir::create(&args.out, args.force)?;
    dir.write_config(&moved.cfg)?;
    dir.write_checkpoint(&Checkpoint {
        model: moved.clone(),
        step: 0,
        moments: None,
        stream_positions: None,
    })?;
    let cmp = Comparison {
        source: checkpoint_path(&args.checkpoint).display().to_string(),
        source_variant: cfg.variant.name().into(),
        target_variant: moved.cfg.variant.name().into(),
        res_factor: cfg.res_factor(),
        source_step: ck.step,
        samples,
        eval_seed: cfg.eval_seed,
        rule: "W1' = W1·W_E, W2' = W_Eᵀ·W2, b1' = b1, b2' = W_Eᵀ·b2; both evaluated on the \
               same stream; the transplant beats naive if loss/naive + 2·SE < 1",
        instances: before
            .into_iter()
            .zip(after)
            .map(|(o, t)| Pair {
                instance: o.instance,
                seed: cfg.instance_seed(o.instance),
                p: o.p,
                transplant_beats_naive: t.ratio + 2.0 * t.ratio_se < 1.0,
                original: o,
                transplant: t,
            })
            .collect(),
    };
    dir.write_json(TRANSPLANT_JSON, &cmp)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&cmp)?);
    } else {
        outln!(
            "{} → {} ({} samples per instance); loss/naive ± SE",
            cmp.source_variant,
            cmp.target_variant,
            samples
        );
        for p in &cmp.instances {
            outln!(
                "instance {:>3}  seed {:>6}  p {:.4}  original {:.4} ± {:.4}  transplant {:.4} ± {:.4}{}",
                p.instance,
                p.seed,
                p.p,
                p.original.ratio,
                p.original.ratio_se,
                p.transplant.ratio,
                p.transplant.ratio_se,
                if p.transplant_beats_naive { "  (beats naive)" } else { "" }
            );
        }
    }
    eprintln!("wrote {}", dir.path.display());
    Ok(0)
}
