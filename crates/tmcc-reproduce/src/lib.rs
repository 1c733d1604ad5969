//! `tmcc reproduce` (and `cargo xtask reproduce`, which calls it): every claim of the
//! papers the lab follows, with statistics, a Markdown report with figures, and a
//! machine-readable `claims.json`. One folder per paper:
//!
//! - `seed_claims/`: the seed notebook's claims 1–4 (docs/science.md#the-seeds-claims);
//! - `follow_up/`: the follow-up paper's experiments ("Compressed Computation is (probably)
//!   not Computation in Superposition"), claims P1–P5, on the `mix` model.
//!
//! - `apd/`: APD's own targets, the 1-, 2- and 3-layer residual MLPs at APD's protocol,
//!   claims A1–A5, with the lab's interventions (one-hot output and its split, SNR,
//!   response classes, transplant).
//!
//! - `toy_models/`: which toy models compute in superposition — every candidate preset at
//!   its own protocol across p, with two verdicts each (claims T1–T6).
//!
//! Shared by all: the plan and progress context
//! (`ctx.rs`), the Markdown tables (`table.rs`) and the report (`report.rs`). Every run
//! trains through the lab ([`tmcc_lab`]), via [`Ctx::train`] or [`Ctx::train_observed`].

mod apd;
mod ctx;
mod follow_up;
mod report;
mod seed_claims;
mod table;
mod toy_models;

use std::path::PathBuf;

pub use ctx::{ClaimResult, Ctx, Plan};
use tmcc_lab::runner::Device;
pub use tmcc_lab::Error;

/// A part of the reproduction that can be run alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The seed notebook's claims 1–4.
    SeedClaims,
    /// The follow-up paper's P1–P5.
    FollowUp,
    /// APD's target models, A1–A5.
    Apd,
    /// The survey of toy models, T1–T6.
    ToyModels,
}

/// What the command was asked to do.
pub struct Options {
    pub quick: bool,
    /// Run only this part (the report then holds only its claims); `None`: everything.
    pub only: Option<Section>,
    /// Where the runs train and evaluate.
    pub device: Device,
    pub out_dir: PathBuf,
    /// The command line, quoted in the report.
    pub command: String,
    /// The source revision it ran at (e.g. `git describe --always --dirty`), quoted too.
    pub revision: String,
}

impl Options {
    /// Whether `section` is part of this run.
    pub fn runs(&self, section: Section) -> bool {
        self.only.is_none_or(|only| only == section)
    }
}

/// The outcome of a reproduction.
pub struct Outcome {
    pub claims: Vec<ClaimResult>,
    pub seconds: f64,
}

/// Runs every claim and writes `REPORT.md`, `claims.json` and `figures/` into `out_dir`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let mut ctx = Ctx::new(
        Plan::new(opts.quick),
        opts.device.clone(),
        opts.out_dir.clone(),
    );
    std::fs::create_dir_all(&ctx.fig_dir)
        .map_err(|e| Error::Other(format!("{}: {e}", ctx.fig_dir.display())))?;
    let mut claims = Vec::new();
    if opts.runs(Section::SeedClaims) {
        claims.extend(seed_claims::run(&mut ctx)?);
    }
    if opts.runs(Section::FollowUp) {
        claims.extend(follow_up::run(&mut ctx)?);
    }
    if opts.runs(Section::Apd) {
        claims.extend(apd::run(&mut ctx)?);
    }
    if opts.runs(Section::ToyModels) {
        let (toy, intro) = toy_models::run(&mut ctx)?;
        ctx.intros.push(('T', toy_models::HEADING.into(), intro));
        claims.extend(toy);
    }
    let seconds = ctx.elapsed();
    report::write(&ctx, opts, &claims, seconds)?;
    Ok(Outcome { claims, seconds })
}
