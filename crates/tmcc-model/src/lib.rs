//! The TMCC model family (SCIENCE.md): configuration, parameter layout, sparse batches,
//! the dense reference path and the fast backend path with hand-written backward passes,
//! Adam/AdamW with schedules, the training loop, evaluation and checkpoints.
//!
//! Shape letters: `K` instances, `B` batch, `F` features, `H` hidden, `D` input width.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod eval;
pub mod fast;
pub mod init;
pub mod io;
pub mod layout;
pub mod model;
pub mod optim;
pub mod reference;
pub mod train;

pub use config::{Config, ConfigError, Variant};
pub use layout::Param;
pub use model::{Float, Model};

/// Errors of the model crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Kernel(#[from] tmcc_kernels::KernelError),
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("loss became {value} at step {step} (instance {instance}); training stopped")]
    NonFinite {
        step: u64,
        instance: usize,
        value: f64,
    },
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
