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
//! Device selection: [`DeviceChoice`] (`auto | cpu | cuda`) resolves through
//! [`cuda_available`], which probes for a driver, a device and NVRTC without panicking
//! and says in one line why CUDA cannot be used.

mod bounds;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod ops;
mod scalar;

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

/// The device a run asks for (`--device auto|cpu|cuda`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA if a device can be used, else the CPU (with a reason to log).
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// The backend a [`DeviceChoice`] resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            other => Err(format!(
                "unknown device `{other}`: expected one of auto, cpu, cuda"
            )),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        })
    }
}

impl DeviceChoice {
    /// Resolves the choice by probing for CUDA where needed. `Auto` gives
    /// `(Cuda, None)` or `(Cpu, Some(why CUDA is not used))`, a line for the caller to log;
    /// `Cuda` without a usable device is `Err` with the reason.
    pub fn resolve(self) -> std::result::Result<(DeviceKind, Option<String>), String> {
        match self {
            Self::Cpu => Ok((DeviceKind::Cpu, None)),
            Self::Cuda => cuda_available()
                .map(|()| (DeviceKind::Cuda, None))
                .map_err(|why| format!("--device cuda: {why}")),
            Self::Auto => Ok(match cuda_available() {
                Ok(()) => (DeviceKind::Cuda, None),
                Err(why) => (
                    DeviceKind::Cpu,
                    Some(format!("no CUDA device ({why}); using the CPU")),
                ),
            }),
        }
    }
}

/// Whether the CUDA backend can run here (driver, device 0, NVRTC and the kernels);
/// `Err` gives the reason in one line. Never panics. With the `cuda` feature this
/// initializes and caches device 0, so a following `cuda::Cuda::new(0)` is immediate.
pub fn cuda_available() -> std::result::Result<(), String> {
    #[cfg(feature = "cuda")]
    {
        cuda::probe().map(|_| ())
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err("tmcc was built without the `cuda` feature".into())
    }
}

#[cfg(test)]
mod device_tests {
    use super::*;

    #[test]
    fn device_choice_parses_and_names_the_allowed_values() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda));
        let e = "tpu".parse::<DeviceChoice>().unwrap_err();
        assert!(e.contains("auto, cpu, cuda"), "{e}");
        for c in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }

    #[test]
    fn cpu_always_resolves_and_auto_falls_back_with_a_reason() {
        assert_eq!(DeviceChoice::Cpu.resolve(), Ok((DeviceKind::Cpu, None)));
        match cuda_available() {
            Ok(()) => {
                assert_eq!(DeviceChoice::Auto.resolve(), Ok((DeviceKind::Cuda, None)));
                assert_eq!(DeviceChoice::Cuda.resolve(), Ok((DeviceKind::Cuda, None)));
            }
            Err(why) => {
                assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
                let (kind, line) = DeviceChoice::Auto.resolve().unwrap();
                assert_eq!(kind, DeviceKind::Cpu);
                assert!(line.unwrap().contains(&why));
                let e = DeviceChoice::Cuda.resolve().unwrap_err();
                assert!(e.contains(&why), "{e}");
            }
        }
    }
}
