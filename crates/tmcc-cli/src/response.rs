//! `tmcc response CHECKPOINT`: classify every feature of every instance by its input–output
//! response. For `x = v·e_i` on `--points` values of `v ∈ [-1, 1]`, `resid = out_i − r·v`
//! (`r` = 0 without a residual stream) and `ρ = RMS_v ReLU(v)`: *computed* if
//! `RMS(resid − ReLU(v))/ρ ≤ 0.2`, else *zero* if `RMS(resid)/ρ ≤ 0.2`, else *partial*
//! (`tmcc_model::eval`). Output: counts per instance (default), one CSV row per feature
//! (`--csv`), or JSON with both (`--json`).

use std::path::PathBuf;

use serde::Serialize;
use tmcc_lab::figures::model_response;
use tmcc_model::eval::{FeatureClass, RESPONSE_TOLERANCE};

use tmcc_lab::rundir::load_checkpoint;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint file or a run directory holding one.
    pub checkpoint: PathBuf,
    /// Grid points of v on [-1, 1].
    #[arg(long, default_value_t = 41)]
    pub points: usize,
    /// JSON: thresholds, counts and every feature's class and errors.
    #[arg(long)]
    pub json: bool,
    /// CSV: instance,seed,p,feature,class,err_computed,err_zero.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

#[derive(Serialize)]
struct Feature {
    feature: usize,
    class: FeatureClass,
    err_computed: f64,
    err_zero: f64,
}

#[derive(Serialize)]
struct Instance {
    instance: usize,
    seed: u64,
    p: f64,
    computed: usize,
    zero: usize,
    partial: usize,
    features: Vec<Feature>,
}

#[derive(Serialize)]
struct Report {
    variant: String,
    n_feat: usize,
    n_hidden: usize,
    points: usize,
    tolerance: f64,
    rule: String,
    instances: Vec<Instance>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    anyhow::ensure!(
        args.points >= 3,
        "--points must be ≥ 3, got {}",
        args.points
    );
    let ck = load_checkpoint(&args.checkpoint)?;
    let cfg = &ck.model.cfg;
    let resp = model_response(&ck.model, args.points)?;
    let tol = RESPONSE_TOLERANCE;
    let report = Report {
        variant: cfg.variant.name().into(),
        n_feat: cfg.n_feat,
        n_hidden: cfg.n_hidden,
        points: args.points,
        tolerance: tol,
        rule: format!(
            "resid = out_i − r·v for x = v·e_i; ρ = RMS ReLU(v); computed if RMS(resid − ReLU)/ρ ≤ {tol}, \
             else zero if RMS(resid)/ρ ≤ {tol}, else partial"
        ),
        instances: resp
            .iter()
            .enumerate()
            .map(|(k, feats)| {
                let count = |c| feats.iter().filter(|f| f.class == c).count();
                Instance {
                    instance: k,
                    seed: cfg.instance_seed(k),
                    p: cfg.instance_p(k),
                    computed: count(FeatureClass::Computed),
                    zero: count(FeatureClass::Zero),
                    partial: count(FeatureClass::Partial),
                    features: feats
                        .iter()
                        .map(|f| Feature {
                            feature: f.feature,
                            class: f.class,
                            err_computed: f.err_computed,
                            err_zero: f.err_zero,
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        outln!("instance,seed,p,feature,class,err_computed,err_zero");
        for i in &report.instances {
            for f in &i.features {
                let class = serde_json::to_value(f.class)?;
                outln!(
                    "{},{},{},{},{},{},{}",
                    i.instance,
                    i.seed,
                    i.p,
                    f.feature,
                    class.as_str().unwrap_or_default(),
                    f.err_computed,
                    f.err_zero
                );
            }
        }
    } else {
        outln!(
            "{} (F = {}, H = {}); {}",
            report.variant,
            cfg.n_feat,
            cfg.n_hidden,
            report.rule
        );
        outln!("instance,seed,p,computed,zero,partial");
        for i in &report.instances {
            outln!(
                "{},{},{},{},{},{}",
                i.instance,
                i.seed,
                i.p,
                i.computed,
                i.zero,
                i.partial
            );
        }
    }
    Ok(0)
}
