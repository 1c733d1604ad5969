//! Tensor kernels for tmcc, batched over `K` independent model instances.
//!
//! Every array lives in one flat buffer of the backend (`Backend::Buf`); instance `k`'s
//! part of an operand starts at `off + k·stride` ([`View`]). All matrices are row-major.
//! Shape letters used throughout the workspace: `K` instances, `B` batch, `F` features,
//! `H` hidden neurons, `D` input width (embedding width, or `F` without embedding).
//!
//! The backend interface is what the model's fast training step is written against;
//! [`cpu::Cpu`] implements it with faer and rayon (parallel over instances),
//! and a CUDA backend implements the same operations on the GPU. A backend that cannot do
//! an operation returns [`KernelError::Unsupported`], never panics.

pub mod cpu;
mod ops;
mod scalar;

pub use ops::{AdamSpec, Backend, Csr, Gemm, LossKind, LossSpec, Operand, SparseSpec, View};
pub use scalar::Scalar;

/// Errors of a kernel backend.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("operand `{name}` out of bounds: needs {needed} elements, buffer has {len}")]
    OutOfBounds {
        name: &'static str,
        needed: usize,
        len: usize,
    },
    #[error("invalid kernel arguments: {0}")]
    Invalid(String),
    #[error("backend `{backend}` does not support `{op}`")]
    Unsupported {
        backend: &'static str,
        op: &'static str,
    },
    #[error("device error: {0}")]
    Device(String),
}

pub type Result<T> = std::result::Result<T, KernelError>;
