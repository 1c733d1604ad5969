//! The CUDA C sources of the backend and their run-time compilation with NVRTC.
//!
//! The `.cu` files under `crates/tmcc-kernels/kernels/` are embedded with `include_str!`
//! and compiled when a [`super::Cuda`] backend is first created on a device: to a CUBIN for
//! the device's exact architecture (`sm_XY`, no PTX JIT in the driver), or, if that fails,
//! to PTX for `compute_XY` that the driver compiles. The loaded modules are cached per
//! process and device by [`super::Cuda::new`].
//!
//! # Finding `libnvrtc`
//! cudarc loads NVRTC by name (`libnvrtc.so`, `libnvrtc.so.12`, `libnvrtc.so.11`, …) through
//! the dynamic loader, so a CUDA toolkit on `LD_LIBRARY_PATH` (or in the loader's cache) is
//! found as is. Without a toolkit, NVRTC can be installed from PyPI, even on a machine with
//! no GPU: `python3 -m pip install nvidia-cuda-nvrtc-cu12` puts `libnvrtc.so.12` under
//! `site-packages/nvidia/cuda_nvrtc/lib/`. Point tmcc at it with either
//!
//! * `TMCC_NVRTC_LIB=/path/to/libnvrtc.so.12` (or the directory holding it): the library is
//!   opened by absolute path before cudarc looks for it by name, which then finds the loaded
//!   copy by its soname; or
//! * `LD_LIBRARY_PATH=/path/to/dir` set before the process starts.
//!
//! `scripts/gpu-check.sh` does the search and sets `TMCC_NVRTC_LIB`. An NVRTC whose soname is
//! not one cudarc asks for (e.g. `libnvrtc.so.13`) needs a `libnvrtc.so` symlink on
//! `LD_LIBRARY_PATH` instead.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cudarc::nvrtc::{result, sys};

/// One `.cu` file of the backend and the kernels it defines.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    pub name: &'static str,
    pub src: &'static str,
    /// Contract `a*b + c` into fused multiply-adds (the products); `false` keeps the CPU
    /// backend's rounding (element-wise and sparse kernels).
    pub fmad: bool,
    pub functions: &'static [&'static str],
}

pub const GEMM: KernelSource = KernelSource {
    name: "gemm.cu",
    src: include_str!("../../kernels/gemm.cu"),
    fmad: true,
    functions: &["gemm_64", "gemm_32"],
};

pub const ELEMENTWISE: KernelSource = KernelSource {
    name: "elementwise.cu",
    src: include_str!("../../kernels/elementwise.cu"),
    fmad: false,
    functions: &[
        "fill_f32",
        "add_bias_f32",
        "col_sum_f32",
        "relu_f32",
        "relu_mask_f32",
        "axpy_f32",
        "adam_f32",
    ],
};

pub const SPARSE: KernelSource = KernelSource {
    name: "sparse.cu",
    src: include_str!("../../kernels/sparse.cu"),
    fmad: false,
    functions: &["gather_f32", "scatter_f32", "loss_f32"],
};

/// Every kernel source of the backend.
pub const SOURCES: [KernelSource; 3] = [GEMM, ELEMENTWISE, SPARSE];

/// The environment variable naming `libnvrtc` (a file, or the directory that holds it).
pub const NVRTC_ENV: &str = "TMCC_NVRTC_LIB";

/// What NVRTC produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// PTX for a virtual architecture, e.g. `compute_90`; the driver compiles it on load.
    Ptx(u32),
    /// A CUBIN for a real architecture, e.g. `sm_90`.
    Cubin(u32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Ptx(a) => write!(f, "PTX compute_{a}"),
            Target::Cubin(a) => write!(f, "CUBIN sm_{a}"),
        }
    }
}

/// A compiled module image: PTX text (NUL-terminated) or CUBIN bytes.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub target: Target,
    pub image: Vec<u8>,
    /// NVRTC's log (warnings), empty when clean.
    pub log: String,
}

#[cfg(target_os = "linux")]
fn dlopen_global(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    extern "C" {
        fn dlopen(filename: *const c_char, flag: i32) -> *mut std::ffi::c_void;
        fn dlerror() -> *const c_char;
    }
    const RTLD_NOW: i32 = 2;
    const RTLD_GLOBAL: i32 = 0x100;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: `c` is a valid NUL-terminated path; the handle is intentionally leaked so the
    // library stays loaded for the life of the process.
    let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated message.
        let msg = unsafe {
            let e = dlerror();
            if e.is_null() {
                "unknown dlopen error".to_string()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(msg);
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn dlopen_global(path: &Path) -> Result<(), String> {
    Err(format!(
        "cannot preload {}: only supported on Linux",
        path.display()
    ))
}

/// Opens `libnvrtc` from `path` (the library, or a directory holding `libnvrtc.so.12`,
/// `libnvrtc.so` or `libnvrtc.so.11`) so that cudarc's by-name lookup finds it.
pub fn preload_nvrtc(path: &Path) -> Result<PathBuf, String> {
    let file = if path.is_dir() {
        ["libnvrtc.so.12", "libnvrtc.so", "libnvrtc.so.11"]
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| format!("no libnvrtc.so[.12|.11] in {}", path.display()))?
    } else {
        path.to_path_buf()
    };
    dlopen_global(&file).map_err(|e| format!("cannot load {}: {e}", file.display()))?;
    Ok(file)
}

/// Whether NVRTC can be used; `Err` says why not in one line. Honours [`NVRTC_ENV`].
pub fn nvrtc_available() -> Result<(), String> {
    static PRELOAD: OnceLock<Result<(), String>> = OnceLock::new();
    let preload = PRELOAD.get_or_init(|| match std::env::var_os(NVRTC_ENV) {
        Some(p) if !p.is_empty() => preload_nvrtc(Path::new(&p)).map(|_| ()),
        _ => Ok(()),
    });
    if let Err(e) = preload {
        return Err(format!("{NVRTC_ENV}: {e}"));
    }
    // SAFETY: only probes whether the library can be opened.
    if unsafe { sys::is_culib_present() } {
        Ok(())
    } else {
        Err(format!(
            "NVRTC library not found (libnvrtc.so / libnvrtc.so.12 / .11 by name): install a \
             CUDA toolkit or `python3 -m pip install nvidia-cuda-nvrtc-cu12` and set \
             {NVRTC_ENV}=<its lib directory> or LD_LIBRARY_PATH"
        ))
    }
}

/// Runs `f`, turning a panic of cudarc's dynamic loader (a missing symbol) into `Err`.
pub(crate) fn no_panic<R>(what: &str, f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!(
                "{what} panicked: {}",
                msg.lines().next().unwrap_or("")
            ))
        }
    }
}

/// NVRTC's version `(major, minor)`.
pub fn nvrtc_version() -> Result<(i32, i32), String> {
    nvrtc_available()?;
    no_panic("nvrtcVersion", || {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: plain out-parameters.
        unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| format!("nvrtcVersion: {e}"))?;
        Ok((major, minor))
    })
}

/// The real architectures (`sm_XY` as `XY`) this NVRTC can compile for.
pub fn supported_archs() -> Result<Vec<u32>, String> {
    nvrtc_available()?;
    no_panic("nvrtcGetSupportedArchs", || {
        let mut n = 0;
        // SAFETY: out-parameter, then a buffer of the size NVRTC reported.
        unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
            .result()
            .map_err(|e| format!("nvrtcGetNumSupportedArchs: {e}"))?;
        let mut archs = vec![0i32; n.max(0) as usize];
        unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
            .result()
            .map_err(|e| format!("nvrtcGetSupportedArchs: {e}"))?;
        Ok(archs.into_iter().map(|a| a as u32).collect())
    })
}

/// Owns an NVRTC program.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by create_program and is destroyed once.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

fn log_of(prog: &Program) -> String {
    // SAFETY: `prog` is a live program.
    match unsafe { result::get_program_log(prog.0) } {
        Ok(log) => {
            let bytes: Vec<u8> = log
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).trim().to_string()
        }
        Err(e) => format!("(no log: {e})"),
    }
}

/// Compiles one kernel source for `target`. `Err` carries NVRTC's log.
pub fn compile(src: &KernelSource, target: Target) -> Result<Compiled, String> {
    nvrtc_available()?;
    no_panic("NVRTC", || {
        let code = CString::new(src.src).map_err(|e| e.to_string())?;
        let name = CString::new(src.name).map_err(|e| e.to_string())?;
        let prog = Program(
            result::create_program(&code, Some(name.as_c_str()))
                .map_err(|e| format!("{}: nvrtcCreateProgram: {e}", src.name))?,
        );
        let arch = match target {
            Target::Ptx(a) => format!("--gpu-architecture=compute_{a}"),
            Target::Cubin(a) => format!("--gpu-architecture=sm_{a}"),
        };
        let opts = [arch, format!("--fmad={}", src.fmad)];
        // SAFETY: `prog` is live; the options are plain strings.
        if let Err(e) = unsafe { result::compile_program(prog.0, &opts) } {
            return Err(format!("{} ({target}): {e}: {}", src.name, log_of(&prog)));
        }
        let image = match target {
            Target::Ptx(_) => {
                // SAFETY: compiled program; NVRTC reports the size including the NUL.
                let ptx = unsafe { result::get_ptx(prog.0) }
                    .map_err(|e| format!("{}: nvrtcGetPTX: {e}", src.name))?;
                ptx.into_iter().map(|c| c as u8).collect()
            }
            Target::Cubin(_) => {
                let mut size = 0usize;
                // SAFETY: compiled program; the buffer has the size NVRTC reported.
                unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
                    .result()
                    .map_err(|e| format!("{}: nvrtcGetCUBINSize: {e}", src.name))?;
                let mut buf = vec![0u8; size];
                unsafe { sys::nvrtcGetCUBIN(prog.0, buf.as_mut_ptr() as *mut c_char) }
                    .result()
                    .map_err(|e| format!("{}: nvrtcGetCUBIN: {e}", src.name))?;
                buf
            }
        };
        Ok(Compiled {
            target,
            image,
            log: log_of(&prog),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Where pip puts `nvidia-cuda-nvrtc-cu12`'s library, if python3 can tell.
    fn pip_nvrtc_dir() -> Option<PathBuf> {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import nvidia.cuda_nvrtc as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))",
            ])
            .output()
            .ok()?;
        let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        (out.status.success() && dir.join("libnvrtc.so.12").exists()).then_some(dir)
    }

    /// Compiles every `.cu` source with NVRTC for PTX (`compute_80`) and for a CUBIN of
    /// every architecture of interest that this NVRTC supports (`sm_80`, `sm_90` = H100/H200).
    /// Needs no GPU: NVRTC alone. Skipped, visibly, without NVRTC; `TMCC_NVRTC_LIB` or
    /// `LD_LIBRARY_PATH` point at it, else the pip wheel is looked for through python3.
    #[test]
    fn every_kernel_source_compiles_with_nvrtc() {
        let mut err = std::io::stderr();
        if nvrtc_available().is_err() {
            if let Some(dir) = pip_nvrtc_dir() {
                let _ = preload_nvrtc(&dir);
            }
        }
        if let Err(why) = nvrtc_available() {
            let _ = writeln!(
                err,
                "every_kernel_source_compiles_with_nvrtc: skipped: {why}"
            );
            return;
        }
        let (major, minor) = nvrtc_version().unwrap();
        let archs = supported_archs().unwrap();
        let mut targets = vec![Target::Ptx(80)];
        targets.extend(
            [80, 90]
                .into_iter()
                .filter(|a| archs.contains(a))
                .map(Target::Cubin),
        );
        // kernels/philox.cuh is in no source yet: compiled alone (device functions only).
        let philox = KernelSource {
            name: "philox.cuh",
            src: include_str!("../../kernels/philox.cuh"),
            fmad: false,
            functions: &[],
        };
        for src in SOURCES.into_iter().chain([philox]) {
            for &t in &targets {
                let c = compile(&src, t).unwrap_or_else(|e| panic!("{e}"));
                assert!(!c.image.is_empty());
                assert!(
                    c.log.is_empty(),
                    "{} ({t}): NVRTC warnings:\n{}",
                    src.name,
                    c.log
                );
                if let Target::Ptx(_) = t {
                    let text = String::from_utf8_lossy(&c.image);
                    for f in src.functions {
                        assert!(
                            text.contains(&format!(".entry {f}(")),
                            "{}: no entry point {f} in the PTX",
                            src.name
                        );
                    }
                }
            }
        }
        let _ = writeln!(
            err,
            "every_kernel_source_compiles_with_nvrtc: NVRTC {major}.{minor} compiled {} sources \
             and philox.cuh for {}",
            SOURCES.len(),
            targets
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
