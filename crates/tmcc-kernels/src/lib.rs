//! Tensor kernels for tmcc, batched over `K` independent model instances.
//!
//! Every array lives in one flat buffer of the backend (`Backend::Buf`); instance `k`'s
//! part of an operand starts at `off + k·stride` ([`View`]). All matrices are row-major.
//! Shape letters used throughout the workspace: `K` instances, `B` batch, `F` features,
//! `H` hidden neurons, `D` input width (embedding width, or `F` without embedding).
//!
//! The backend interface is what the model's fast training step is written against;
//! [`cpu::Cpu`] implements it with faer and rayon (parallel over instances),
//! and `cuda::Cuda` (cargo feature `cuda`) implements the same operations on the GPU with
//! hand-written kernels compiled at run time by NVRTC. A backend that cannot do an
//! operation returns [`KernelError::Unsupported`], never panics.
//!
//! Devices: [`device`] resolves `--device auto|cpu|cuda` to a runtime [`Device`] and
//! dispatches work to its backend. Without the cargo feature `cuda`, [`cuda`] is a stub
//! whose backend type can never be constructed (candle's pattern), so no crate above this
//! one needs a `cfg(feature = "cuda")`.
//!
//! [`philox`] is the counter-based generator Philox-4×32-10, also written for the CUDA
//! kernels (`kernels/philox.cuh`); nothing draws from it yet.

mod bounds;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda_stub.rs"]
pub mod cuda;
pub mod device;
mod ops;
pub mod philox;
mod scalar;

pub use device::{cuda_available, Device, DeviceChoice, DeviceKind, OnBackend};
pub use ops::{AdamSpec, Backend, Csr, Gemm, LossKind, LossSpec, Operand, SparseSpec, View};
pub use scalar::{RawGemm, Scalar};

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
