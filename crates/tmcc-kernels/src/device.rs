//! Where work runs: the choice a user makes (`--device auto|cpu|cuda`), the probe that
//! resolves it without panicking, and the runtime [`Device`] that hands a piece of work to
//! the matching backend ([`Device::run`] with an [`OnBackend`]).
//!
//! `auto` uses CUDA when a driver, a device and NVRTC are found, and otherwise the CPU with
//! a one-line reason for the caller to show; `cuda` without a usable device is an error
//! with that reason. Without the `cuda` cargo feature the CUDA side is a stub that can
//! never be constructed, so callers match on [`Device`] without any `cfg`.

use crate::cpu::Cpu;
use crate::cuda::Cuda;
use crate::Backend;

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
    crate::cuda::probe().map(|_| ())
}

/// A piece of work that runs on any backend: what [`Device::run`] dispatches (Rust has no
/// closures generic over a type, so the work is a value with a generic method).
pub trait OnBackend {
    type Output;
    fn run<Bk: Backend<f32> + Clone>(self, bk: Bk) -> Self::Output;
}

/// The device runs train and evaluate on.
#[derive(Clone, Debug, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(Cuda),
}

impl Device {
    /// Resolves `--device`: `auto` gives CUDA where a device can be used, else the CPU with
    /// a line saying why (for the caller to show); `cuda` without a usable device is `Err`
    /// with the reason, in one line.
    pub fn select(choice: DeviceChoice) -> std::result::Result<(Self, Option<String>), String> {
        let (kind, note) = choice.resolve()?;
        match kind {
            DeviceKind::Cpu => Ok((Self::Cpu, note)),
            DeviceKind::Cuda => Cuda::new(0)
                .map(|c| (Self::Cuda(c), note))
                .map_err(|e| format!("--device {choice}: {e}")),
        }
    }

    pub fn kind(&self) -> DeviceKind {
        match self {
            Self::Cpu => DeviceKind::Cpu,
            Self::Cuda(_) => DeviceKind::Cuda,
        }
    }

    /// One line naming the device, for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Cpu => format!("cpu ({} rayon threads)", rayon::current_num_threads()),
            Self::Cuda(c) => format!("cuda: {}", c.describe()),
        }
    }

    /// Free memory of a compute device that is not the host, in bytes; `None` on the CPU
    /// (its memory is the host's) or when the device cannot say.
    pub fn free_memory(&self) -> Option<u64> {
        match self {
            Self::Cpu => None,
            Self::Cuda(c) => c.free_memory().ok().map(|b| b as u64),
        }
    }

    /// Runs `work` on this device's backend.
    pub fn run<W: OnBackend>(&self, work: W) -> W::Output {
        match self {
            Self::Cpu => work.run(Cpu),
            Self::Cuda(c) => work.run(c.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
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
