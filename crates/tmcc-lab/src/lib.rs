//! Experiments on the TMCC: training runs and their directories, the transplant
//! intervention, sweeps, statistics, eigen-analysis, the untrained baselines and figures.
//! The reproduction of the papers' claims, which uses all of these, is the
//! `tmcc-reproduce` crate.

pub mod baselines;
pub mod eigen;
pub mod figures;
pub mod run;
pub mod rundir;
pub mod stats;
pub mod sweep;
pub mod transplant;

/// Errors of an experiment: the model's, or a figure's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] tmcc_model::Error),
    #[error("figure: {0}")]
    Plot(#[from] tmcc_plot::PlotError),
    #[error("{0}")]
    Other(String),
}
