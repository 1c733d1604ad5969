//! Experiments on the TMCC: the runner (train with progress, evaluate, write metrics) and
//! the run directory it writes, sweeps, the transplant intervention, the response
//! analysis, APD's one-hot output with its residual-vs-MLP split (`one_hot`) and its
//! signal-to-noise ratio of feature pairs (`snr`), statistics, eigen-analysis, the untrained baselines and figures. The
//! reproduction of the papers' claims, which uses all of these, is the `tmcc-reproduce`
//! crate.
//!
//! Every run and analysis takes a [`runner::Device`] (the CPU backend or a CUDA device)
//! and dispatches to its backend; errors are one [`Error`] type, one line each.

pub mod baselines;
pub mod eigen;
pub mod figures;
pub mod folded;
pub mod ideal;
pub mod one_hot;
pub mod response;
pub mod rundir;
pub mod runner;
pub mod snr;
pub mod stats;
pub mod sweep;
pub mod transplant;

/// Errors of an experiment: the model's, a figure's, a run's, or a file's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] tmcc_model::Error),
    #[error(transparent)]
    Config(#[from] tmcc_model::ConfigError),
    #[error("figure: {0}")]
    Plot(#[from] tmcc_plot::PlotError),
    /// A checkpoint without the state a resume needs (`what`: "optimizer state",
    /// "data-stream positions"). The text keeps the wording of earlier versions, so the
    /// command line prints what it printed before.
    #[error("checkpoint has no {what}")]
    MissingState { what: &'static str },
    /// `source`, with what was being done when it happened (printed `what: source`).
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("{0}")]
    Other(String),
}

/// Adds what was being done to the error of a result: this crate's `anyhow::Context`, so
/// messages read the same as before the code moved out of the command line.
pub(crate) trait WithContext<T> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> WithContext<T> for Result<T, E> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|e| Error::Context {
            what: what(),
            source: Box::new(e),
        })
    }
}
