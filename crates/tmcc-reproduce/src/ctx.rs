//! The shared machinery of the reproduction: the plan (how many seeds and steps, quick or
//! full), progress on stderr with an ETA, training runs with evaluation, and the record
//! of one claim. Every training run of the reproduction goes through [`Ctx::train`] or
//! [`Ctx::train_observed`], the one place that calls the lab's training entry point.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use tmcc_lab::runner::{fmt_secs, run, Device, Progress, ProgressLines, RunOptions, RunState};
use tmcc_model::eval::InstanceEval;
use tmcc_model::train::LogPoint;
use tmcc_model::{Config, Model};
use tmcc_plot::HLine;

use crate::Error;

/// How big the reproduction is. `quick` keeps every code path and shrinks the numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub quick: bool,
    /// Seeds per variant (claims 1–3).
    pub seeds: usize,
    /// Training steps at the seed's setting (claims 1–3).
    pub steps: u64,
    /// Training steps of the L1 runs (claim 3).
    pub l1_steps: u64,
    /// Training steps of the sweeps (claims 2 and 4).
    pub sweep_steps: u64,
    /// Seeds per point of the sweeps (claim 4).
    pub sweep_seeds: usize,
    /// Fine-tuning steps of transplanted models.
    pub finetune_steps: u64,
    pub eval_samples: usize,
    pub transplant_ps: Vec<f64>,
    pub d_embs: Vec<usize>,
    pub sigmas: Vec<f64>,
    /// How many times during L1 training the response is classified.
    pub l1_snapshots: u64,
    /// Samples of the host-side passes over the evaluation stream (dead neurons, the
    /// skip-connection candidates of claim 2).
    pub host_eval_samples: usize,
    /// The claim-3 grid: training steps and seeds per grid point.
    pub grid_steps: u64,
    pub grid_seeds: usize,
    /// The seed's evaluation protocol: batches of `seed_eval_batch` fresh samples.
    pub seed_eval_batches: usize,
    pub seed_eval_batch: usize,
    /// Follow-up paper (claims P1–P5, `follow_up/`): training steps of the models
    /// trained at each p (P1).
    pub paper_p_steps: u64,
    /// The p grid of P1 (log-spaced from 1e-3 to 1; must contain 0.01).
    pub paper_ps: Vec<f64>,
    /// Training steps of the σ sweeps at p = 0.01 (P2) and of the rank runs (P5).
    pub paper_steps: u64,
    /// The σ grid of P2 (starts at 0).
    pub paper_sigmas: Vec<f64>,
    /// Seeds per σ (P2) and per rank setting and sign (P5).
    pub paper_seeds: usize,
    /// Ranks k of the rank-k mixing matrices (P5).
    pub paper_ranks: Vec<usize>,
    /// Evaluation samples of the follow-up experiments at p ≤ 0.1.
    pub paper_eval_samples: usize,
    /// Evaluation samples at p > 0.1 (≥ 10 active features per sample, so fewer suffice).
    pub paper_eval_samples_dense: usize,
    /// Evaluation samples of the untrained baselines (P4) at p ≤ 0.1 and above.
    pub paper_baseline_eval_samples: usize,
    pub paper_baseline_eval_samples_dense: usize,
    /// Alternations of the SNMF baseline (each: least squares for W_out, then
    /// `snmf_inner` projected gradient steps for W_in).
    pub snmf_iters: usize,
    pub snmf_inner: usize,
    /// APD's targets (`apd/`): seeds per target (instances of one run), training steps,
    /// batch size (APD: 10 000 steps of 2048), evaluation samples, and how many seeds
    /// get the SNR maps (`F·(F−1)` dense passes each).
    pub apd_seeds: usize,
    pub apd_steps: u64,
    pub apd_batch: usize,
    pub apd_eval_samples: usize,
    pub apd_snr_seeds: usize,
    /// The survey of toy models (`toy_models/`): the feature probabilities and seeds per
    /// probability of every model; steps, batch and evaluation samples are each preset's
    /// own unless set here (the quick plan cuts them).
    pub toy_ps: Vec<f64>,
    pub toy_seeds: usize,
    pub toy_steps: Option<u64>,
    pub toy_batch: Option<usize>,
    pub toy_eval_samples: Option<usize>,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                seeds: 3,
                steps: 2_000,
                l1_steps: 2_000,
                sweep_steps: 1_000,
                sweep_seeds: 2,
                finetune_steps: 300,
                eval_samples: 100_000,
                transplant_ps: vec![0.003, 0.01, 0.03],
                d_embs: vec![100, 1000, 4000],
                sigmas: vec![0.0, 0.03, 0.08],
                l1_snapshots: 4,
                host_eval_samples: 20_000,
                grid_steps: 500,
                grid_seeds: 1,
                seed_eval_batches: 10,
                seed_eval_batch: 10_000,
                paper_p_steps: 200,
                paper_ps: vec![0.001, 0.01, 0.1, 0.3],
                paper_steps: 400,
                paper_sigmas: vec![0.0, 0.02, 0.04, 0.08],
                paper_seeds: 1,
                paper_ranks: vec![10, 100],
                paper_eval_samples: 50_000,
                paper_eval_samples_dense: 10_000,
                paper_baseline_eval_samples: 20_000,
                paper_baseline_eval_samples_dense: 5_000,
                snmf_iters: 30,
                snmf_inner: 3,
                apd_seeds: 3,
                apd_steps: 30,
                apd_batch: 256,
                apd_eval_samples: 10_000,
                apd_snr_seeds: 1,
                toy_ps: vec![0.001, 0.01, 0.1],
                toy_seeds: 2,
                toy_steps: Some(40),
                toy_batch: Some(256),
                toy_eval_samples: Some(20_000),
            }
        } else {
            Self {
                quick,
                seeds: 5,
                steps: 20_000,
                l1_steps: 10_000,
                sweep_steps: 5_000,
                sweep_seeds: 3,
                finetune_steps: 1_000,
                eval_samples: 1_000_000,
                transplant_ps: vec![0.001, 0.003, 0.01, 0.03, 0.1],
                d_embs: vec![100, 300, 1000, 3000, 10_000],
                sigmas: vec![0.0, 0.01, 0.02, 0.03, 0.05, 0.08],
                l1_snapshots: 10,
                host_eval_samples: 200_000,
                grid_steps: 3_000,
                grid_seeds: 2,
                seed_eval_batches: 100,
                seed_eval_batch: 10_000,
                paper_p_steps: 2_000,
                paper_ps: (0..13)
                    .map(|i| 10f64.powf(-3.0 + 0.25 * i as f64))
                    .collect(),
                paper_steps: 5_000,
                paper_sigmas: (0..17).map(|i| 0.005 * i as f64).collect(),
                paper_seeds: 2,
                paper_ranks: vec![10, 20, 50, 100],
                paper_eval_samples: 1_000_000,
                paper_eval_samples_dense: 200_000,
                paper_baseline_eval_samples: 200_000,
                paper_baseline_eval_samples_dense: 50_000,
                snmf_iters: 100,
                snmf_inner: 3,
                apd_seeds: 3,
                apd_steps: 10_000,
                apd_batch: 2048,
                apd_eval_samples: 1_000_000,
                apd_snr_seeds: 3,
                toy_ps: vec![0.001, 0.01, 0.1],
                toy_seeds: 3,
                toy_steps: None,
                toy_batch: None,
                toy_eval_samples: None,
            }
        }
    }

    /// The seed notebook's setting for `variant` with this plan's seeds and steps.
    pub fn base(&self, variant: tmcc_model::Variant) -> Config {
        Config {
            variant,
            steps: self.steps,
            instances: self.seeds,
            eval_samples: self.eval_samples,
            log_every: (self.steps / 20).max(1),
            ..Config::default()
        }
    }
}

/// A trained and evaluated multi-instance run.
pub struct RunOutput {
    pub model: Model<f32>,
    pub eval: Vec<InstanceEval>,
    pub log: Vec<LogPoint>,
}

/// One claim's outcome, as written to claims.json and the report.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimResult {
    pub id: String,
    pub title: String,
    /// Which setting (seed notebook `r = 0`, APD `r = 1`, follow-up paper).
    pub setting: String,
    pub holds: bool,
    pub verdict: String,
    pub seconds: f64,
    pub numbers: serde_json::Value,
    #[serde(skip)]
    pub markdown: String,
}

/// Progress, timing and output paths of a reproduction.
pub struct Ctx {
    pub plan: Plan,
    /// Where runs train and evaluate.
    pub device: Device,
    pub out_dir: PathBuf,
    pub fig_dir: PathBuf,
    start: Instant,
    pub stage: String,
    /// Introductions of sections: the first letter of their claims' ids, a heading, and
    /// Markdown the report prints before the first of those claims.
    pub intros: Vec<(char, String, String)>,
}

impl Ctx {
    pub fn new(plan: Plan, device: Device, out_dir: PathBuf) -> Self {
        let fig_dir = out_dir.join("figures");
        Self {
            plan,
            device,
            out_dir,
            fig_dir,
            start: Instant::now(),
            stage: String::new(),
            intros: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn log(&self, msg: &str) {
        eprintln!("[{:>6}] {} {msg}", fmt_secs(self.elapsed(), 0), self.stage);
    }

    /// Trains `cfg` (optionally from `model`, e.g. a transplant) and evaluates it at each
    /// instance's `p`, printing progress with an ETA about every 5 seconds.
    pub fn train(
        &self,
        label: &str,
        cfg: &Config,
        model: Option<Model<f32>>,
    ) -> Result<RunOutput, Error> {
        self.train_observed(label, cfg, model, |_, _| Ok(()))
    }

    /// As [`Ctx::train`], also calling `at_log` at every logged step.
    pub fn train_observed(
        &self,
        label: &str,
        cfg: &Config,
        model: Option<Model<f32>>,
        mut at_log: impl FnMut(&Progress, &dyn RunState) -> Result<(), Error>,
    ) -> Result<RunOutput, Error> {
        let model = match model {
            Some(m) => Model {
                cfg: cfg.clone(),
                ..m
            },
            None => Model::new(cfg).map_err(tmcc_model::Error::from)?,
        };
        self.log(&format!(
            "{label}: training {} ({} instances × {} steps)",
            cfg.variant.name(),
            cfg.instances,
            cfg.steps
        ));
        let log = |line: &str| self.log(line);
        let mut lines = ProgressLines::new(label, &log, &mut at_log);
        let done = run(&self.device, model, &RunOptions::default(), &mut lines)?.finished()?;
        self.log(&format!(
            "{label}: done in {}",
            fmt_secs(done.metrics.seconds, 0)
        ));
        Ok(RunOutput {
            model: done.checkpoint.model,
            eval: done.metrics.eval,
            log: done.metrics.loss_curve,
        })
    }

    /// Path of a figure, and its link from the report.
    pub fn figure(&self, name: &str) -> (PathBuf, String) {
        (self.fig_dir.join(name), format!("figures/{name}"))
    }
}

/// The one labelled horizontal line of a figure (the naive loss, `n_hidden`, …).
pub fn reference_line(label: &str, y: f64) -> Vec<HLine> {
    vec![HLine {
        label: label.into(),
        y,
    }]
}
