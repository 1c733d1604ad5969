//! `tmcc transplant CHECKPOINT --out DIR`: fold the embedding of an `emb_res` /
//! `emb_res_orth` (→ `res_mlp`) or `emb_mlp` (→ `mlp`) model into its weights
//! (`W1' = W1·W_E`, `W2' = W_Eᵀ·W2`, `b2' = W_Eᵀ·b2`), evaluate the model and its transplant
//! on the same evaluation stream, and write the transplanted model (`config.toml`,
//! `checkpoint.safetensors`, with no optimizer state) and `transplant.json`
//! (`tmcc_lab::transplant`).

use std::path::PathBuf;

use tmcc_lab::rundir::{load_checkpoint, RunDir};
use tmcc_lab::transplant::{transplant, Comparison};

use crate::device_arg::DeviceArg;

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

pub fn run(args: Args) -> anyhow::Result<i32> {
    let ck = load_checkpoint(&args.checkpoint)?;
    let moved = transplant(&ck.model)?;
    let samples = args.samples.unwrap_or(ck.model.cfg.eval_samples);
    anyhow::ensure!(samples >= 1, "--samples must be ≥ 1");
    let device = args.device.select()?;
    let cmp = Comparison::new(&device, &ck, &args.checkpoint, &moved, samples)?;
    let dir = RunDir::create(&args.out, args.force)?;
    cmp.write(&dir, &moved)?;
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
