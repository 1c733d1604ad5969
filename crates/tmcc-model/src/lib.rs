//! The TMCC model family (docs/science.md#model-family): configuration, the task (labels,
//! loss, importance), parameter layout, sparse batches, the dense reference path and the
//! fast backend path with hand-written backward passes, Adam/AdamW with schedules, the
//! training loop, evaluation and checkpoints.
//!
//! Shape letters: `K` instances, `B` batch, `F` features, `H` hidden, `D` input width.

pub mod act;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dense;
pub mod eval;
pub mod fast;
pub mod init;
pub mod io;
pub mod layout;
pub mod memory;
pub mod model;
pub mod optim;
pub mod presets;
pub mod reference;
pub mod task;
pub mod train;

pub use config::{Config, ConfigError, Variant};
pub use layout::Param;
pub use model::{Float, Model};
pub use task::Task;

/// Errors of the model crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Kernel(#[from] tmcc_kernels::KernelError),
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A request the model's state cannot answer (e.g. gradients it does not keep).
    #[error("{0}")]
    State(String),
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
