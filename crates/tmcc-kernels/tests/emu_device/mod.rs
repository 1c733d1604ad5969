//! The emulated CUDA device: the backend's `.cu` kernels built by the host C++ compiler
//! against `emu/cuda_emu.h` (blocks, threads as fibers, `__shared__`, barriers, warp
//! shuffles, atomics; its limits are written at its top) into a driver process, and
//! [`Emu`], a [`Backend`] whose every operation is the CUDA backend's launch, run there.
//!
//! The host side of [`Emu`] mirrors `src/cuda/dense.rs` and `src/cuda/sparse.rs`: the same
//! kernel per operation, the same grid and block shapes (grid-stride launches of 256
//! threads, 16×16 gemm tiles of 64 or 32, 32×8 blocks per 32 columns or per 8 rows), the
//! same splits of large batches and the same arguments in the same C types; the driver
//! refuses a launch whose argument count, byte sizes or pointer-ness differ from the
//! kernel's signature. What it does not mirror is the host-only argument checking (the
//! shared `bounds` checks): the emulation exists to test the kernels.
//!
//! Two builds, each compiled once per change of a source (into
//! `CARGO_TARGET_TMPDIR/cuda-emu/<build>/`, nothing in `/tmp`): `plain` (`-O2`) and `asan`
//! (`-O1 -fsanitize=address`; every buffer is allocated by the driver with its exact size,
//! so an access one element past a buffer stops the launch with ASan's report).
//!
//! The compiler is `$CXX`, else the first of `c++`, `g++`, `clang++` that runs. Without
//! one the tests fail (CI installs `g++`), unless `TMCC_EMU_SKIP=1`, which skips them
//! with a line on stderr.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use tmcc_kernels::{
    AdamSpec, Backend, Csr, Gemm, KernelError, LossKind, LossSpec, Result, SparseSpec, View,
};

/// The environment variable that lets the emulated tests skip when no compiler is found.
const SKIP_ENV: &str = "TMCC_EMU_SKIP";

/// How the driver is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    Plain,
    Asan,
}

impl Build {
    fn name(self) -> &'static str {
        match self {
            Build::Plain => "plain",
            Build::Asan => "asan",
        }
    }
    fn flags(self) -> &'static [&'static str] {
        match self {
            Build::Plain => &["-O2"],
            Build::Asan => &["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"],
        }
    }
}

const EMU_SOURCES: [&str; 6] = [
    "driver.cpp",
    "gemm_emu.cpp",
    "elementwise_emu.cpp",
    "sparse_emu.cpp",
    "selftest_emu.cpp",
    "philox_emu.cpp",
];
const EMU_INPUTS: [&str; 5] = [
    "emu/cuda_emu.h",
    "kernels/philox.cuh",
    "kernels/gemm.cu",
    "kernels/elementwise.cu",
    "kernels/sparse.cu",
];

/// The host C++ compiler, or `None`.
fn compiler() -> Option<String> {
    let candidates = std::env::var("CXX")
        .ok()
        .into_iter()
        .chain(["c++", "g++", "clang++"].map(String::from));
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Compiles the driver of `build` unless an up-to-date one exists; returns its path.
fn build_driver(cxx: &str, build: Build) -> std::result::Result<PathBuf, String> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let emu_dir = crate_dir.join("emu");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cuda-emu")
        .join(build.name());
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let exe = out_dir.join("driver");
    let mut args: Vec<String> = [
        "-std=c++17",
        "-ffp-contract=off",
        "-Wall",
        "-Wno-unknown-pragmas",
    ]
    .into_iter()
    .chain(build.flags().iter().copied())
    .map(String::from)
    .collect();
    args.extend(EMU_SOURCES.map(|s| emu_dir.join(s).display().to_string()));
    let command_line = format!("{cxx} {}", args.join(" "));
    let stamp = out_dir.join("command");
    let inputs = EMU_SOURCES
        .iter()
        .map(|s| emu_dir.join(s))
        .chain(EMU_INPUTS.iter().map(|s| crate_dir.join(s)));
    let fresh = modified(&exe).is_some_and(|built| {
        std::fs::read_to_string(&stamp).is_ok_and(|c| c == command_line)
            && inputs
                .into_iter()
                .all(|p| modified(&p).is_some_and(|m| m <= built))
    });
    if fresh {
        return Ok(exe);
    }
    let tmp = out_dir.join(format!("driver.{}.tmp", std::process::id()));
    let started = std::time::Instant::now();
    let out = Command::new(cxx)
        .args(&args)
        .arg("-o")
        .arg(&tmp)
        .output()
        .map_err(|e| format!("running {cxx}: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "compiling the emulated kernels failed ({command_line}):\n{log}"
        ));
    }
    std::fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    std::fs::write(&stamp, &command_line).map_err(|e| format!("{}: {e}", stamp.display()))?;
    eprintln!(
        "cuda-emu ({}): built in {:.1} s{}{log}",
        build.name(),
        started.elapsed().as_secs_f64(),
        if log.is_empty() { "" } else { ", warnings:\n" }
    );
    Ok(exe)
}

/// A running driver process.
struct Driver {
    child: Child,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Driver {
    fn start(exe: &Path, build: Build) -> std::result::Result<Self, String> {
        let mut cmd = Command::new(exe);
        if build == Build::Asan {
            // Leak checking needs ptrace, which containers often refuse; the driver keeps
            // its thread stacks for the process's life anyway.
            cmd.env("ASAN_OPTIONS", "detect_leaks=0");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let input = BufWriter::new(child.stdin.take().expect("piped"));
        let output = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            input,
            output,
        })
    }

    /// The reason the driver stopped answering (it printed its own message to stderr).
    fn died(&mut self) -> String {
        let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
        format!("the emulated device stopped ({status}); its message is on stderr above")
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::result::Result<(), String> {
        match self.output.read_exact(buf) {
            Ok(()) => Ok(()),
            Err(_) => Err(self.died()),
        }
    }

    fn read_u32(&mut self) -> std::result::Result<u32, String> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    fn send(&mut self, request: &[u8]) -> std::result::Result<(), String> {
        match self
            .input
            .write_all(request)
            .and_then(|()| self.input.flush())
        {
            Ok(()) => Ok(()),
            Err(_) => Err(self.died()),
        }
    }
}

/// The driver of each build: started once per test process.
fn driver(cxx: &str, build: Build) -> &'static Mutex<Driver> {
    static DRIVERS: [OnceLock<std::result::Result<Mutex<Driver>, String>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    let slot = &DRIVERS[build as usize];
    match slot.get_or_init(|| {
        let exe = build_driver(cxx, build)?;
        Driver::start(&exe, build).map(Mutex::new)
    }) {
        Ok(d) => d,
        Err(e) => panic!("cuda-emu ({}): {e}", build.name()),
    }
}

/// The emulated device of `build`, or `None` after printing why `test` is skipped (no
/// compiler and `TMCC_EMU_SKIP=1`). Without a compiler and without that variable: panics.
pub fn emu_or_skip(test: &str, build: Build) -> Option<Emu> {
    static CXX: OnceLock<Option<String>> = OnceLock::new();
    let Some(cxx) = CXX.get_or_init(compiler) else {
        let why = "no host C++ compiler ($CXX, c++, g++ or clang++)";
        if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {why} and {SKIP_ENV}=1");
            return None;
        }
        panic!("{test}: {why}: install g++, or set {SKIP_ENV}=1 to skip the emulated kernel tests");
    };
    Some(Emu {
        driver: driver(cxx, build),
    })
}

/// A kernel argument, pushed in the order and C type of the kernel's signature.
pub enum Arg<'a> {
    /// A value parameter: its bytes.
    Val(Vec<u8>),
    /// A pointer parameter the kernel only reads.
    F32(&'a [f32]),
    U32(&'a [u32]),
    /// A pointer parameter the kernel may write: copied back after the launch.
    F32Out(&'a mut [f32]),
    U32Out(&'a mut [u32]),
}

fn u32v(v: u32) -> Arg<'static> {
    Arg::Val(v.to_ne_bytes().to_vec())
}
fn i32v(v: i32) -> Arg<'static> {
    Arg::Val(v.to_ne_bytes().to_vec())
}
fn u64v(v: usize) -> Arg<'static> {
    Arg::Val((v as u64).to_ne_bytes().to_vec())
}
fn f32v(v: f32) -> Arg<'static> {
    Arg::Val(v.to_ne_bytes().to_vec())
}

/// Grid or block dimensions `(x, y, z)`.
pub type Dims = (u32, u32, u32);

/// The CUDA backend's launches on the emulated device; buffers are host vectors.
#[derive(Clone, Copy)]
pub struct Emu {
    driver: &'static Mutex<Driver>,
}

impl Emu {
    /// The names of the kernels the driver was built with.
    pub fn kernels(&self) -> Vec<String> {
        let mut d = self.driver.lock().unwrap_or_else(|p| p.into_inner());
        let listed = (|| {
            d.send(&1u32.to_ne_bytes())?;
            let n = d.read_u32()?;
            let mut out = Vec::new();
            for _ in 0..n {
                let mut name = vec![0u8; d.read_u32()? as usize];
                d.read_exact(&mut name)?;
                let params = d.read_u32()? as usize;
                let mut skip = vec![0u8; params * 9];
                d.read_exact(&mut skip)?;
                out.push(String::from_utf8_lossy(&name).into_owned());
            }
            Ok::<_, String>(out)
        })();
        listed.unwrap_or_else(|e| panic!("cuda-emu: {e}"))
    }

    /// Launches `kernel` over `grid` blocks of `block` threads with `args`.
    pub fn launch(&self, kernel: &str, grid: Dims, block: Dims, args: &mut [Arg]) -> Result<()> {
        let mut req = Vec::new();
        req.extend(2u32.to_ne_bytes());
        req.extend((kernel.len() as u32).to_ne_bytes());
        req.extend(kernel.as_bytes());
        for d in [grid.0, grid.1, grid.2, block.0, block.1, block.2] {
            req.extend(d.to_ne_bytes());
        }
        req.extend((args.len() as u32).to_ne_bytes());
        for a in args.iter() {
            let (kind, bytes): (u8, Vec<u8>) = match a {
                Arg::Val(b) => (0, b.clone()),
                Arg::F32(v) => (1, v.iter().flat_map(|x| x.to_ne_bytes()).collect()),
                Arg::U32(v) => (1, v.iter().flat_map(|x| x.to_ne_bytes()).collect()),
                Arg::F32Out(v) => (2, v.iter().flat_map(|x| x.to_ne_bytes()).collect()),
                Arg::U32Out(v) => (2, v.iter().flat_map(|x| x.to_ne_bytes()).collect()),
            };
            req.push(kind);
            req.extend((bytes.len() as u64).to_ne_bytes());
            req.extend(bytes);
        }
        let mut d = self.driver.lock().unwrap_or_else(|p| p.into_inner());
        let answer = (|| {
            d.send(&req)?;
            if d.read_u32()? != 0 {
                let mut why = vec![0u8; d.read_u32()? as usize];
                d.read_exact(&mut why)?;
                return Err(format!(
                    "launch of {kernel} refused: {}",
                    String::from_utf8_lossy(&why)
                ));
            }
            for a in args.iter_mut() {
                let mut read_words = |n: usize| {
                    let mut bytes = vec![0u8; n * 4];
                    d.read_exact(&mut bytes).map(|()| bytes)
                };
                match a {
                    Arg::F32Out(v) => {
                        let bytes = read_words(v.len())?;
                        for (x, b) in v.iter_mut().zip(bytes.chunks_exact(4)) {
                            *x = f32::from_ne_bytes(b.try_into().expect("4 bytes"));
                        }
                    }
                    Arg::U32Out(v) => {
                        let bytes = read_words(v.len())?;
                        for (x, b) in v.iter_mut().zip(bytes.chunks_exact(4)) {
                            *x = u32::from_ne_bytes(b.try_into().expect("4 bytes"));
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        })();
        answer.map_err(|e| KernelError::Device(format!("cuda-emu: {e}")))
    }
}

// The launch shapes of src/cuda/dense.rs and src/cuda/sparse.rs.
const THREADS: u32 = 256;
const MAX_BLOCKS: usize = 65_535;
const MAX_GRID_YZ: usize = 65_535;
const ROWS_PER_BLOCK: usize = 8;

fn grid_1d(n: usize) -> (Dims, Dims) {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS);
    ((blocks as u32, 1, 1), (THREADS, 1, 1))
}

fn rows_grid(rows: usize) -> (Dims, Dims) {
    let blocks = rows.div_ceil(ROWS_PER_BLOCK);
    ((blocks as u32, 1, 1), (32, ROWS_PER_BLOCK as u32, 1))
}

impl Backend<f32> for Emu {
    type Buf = Vec<f32>;
    type Idx = Vec<u32>;

    fn name(&self) -> &'static str {
        "cuda-emu"
    }
    fn parallel_instances(&self) -> bool {
        false
    }
    fn zeros(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }
    fn upload(&self, host: &[f32]) -> Result<Vec<f32>> {
        Ok(host.to_vec())
    }
    fn upload_idx(&self, host: &[u32]) -> Result<Vec<u32>> {
        Ok(host.to_vec())
    }
    fn write(&self, dst: &mut Vec<f32>, host: &[f32]) -> Result<()> {
        host.clone_into(dst);
        Ok(())
    }
    fn write_idx(&self, dst: &mut Vec<u32>, host: &[u32]) -> Result<()> {
        host.clone_into(dst);
        Ok(())
    }
    fn read(&self, src: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(src.clone())
    }
    fn len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn fill(&self, buf: &mut Vec<f32>, value: f32) -> Result<()> {
        let n = buf.len();
        if n == 0 {
            return Ok(());
        }
        if value.to_bits() == 0 {
            buf.fill(0.0); // the CUDA backend's memset
            return Ok(());
        }
        let (grid, block) = grid_1d(n);
        self.launch(
            "fill_f32",
            grid,
            block,
            &mut [Arg::F32Out(buf), u64v(n), f32v(value)],
        )
    }

    fn gemm(&self, g: &Gemm<f32>, a: &Vec<f32>, b: &Vec<f32>, c: &mut Vec<f32>) -> Result<()> {
        let (m, n, k) = (g.m, g.n, g.k);
        if g.batch == 0 || m == 0 || n == 0 {
            return Ok(());
        }
        let (kernel, tile) = if m <= 32 || n <= 32 {
            ("gemm_32", 32)
        } else {
            ("gemm_64", 64)
        };
        let (gx, gy) = (n.div_ceil(tile), m.div_ceil(tile));
        assert!(gy <= MAX_GRID_YZ, "gemm: too many row tiles for one launch");
        let mut z0 = 0usize;
        while z0 < g.batch {
            let nz = (g.batch - z0).min(MAX_GRID_YZ);
            self.launch(
                kernel,
                (gx as u32, gy as u32, nz as u32),
                (16, 16, 1),
                &mut [
                    u32v(m as u32),
                    u32v(n as u32),
                    u32v(k as u32),
                    f32v(g.alpha),
                    f32v(g.beta),
                    Arg::F32(a),
                    u64v(g.a.view.off),
                    u64v(g.a.view.stride),
                    i32v(g.a.trans as i32),
                    Arg::F32(b),
                    u64v(g.b.view.off),
                    u64v(g.b.view.stride),
                    i32v(g.b.trans as i32),
                    Arg::F32Out(c),
                    u64v(g.c.off),
                    u64v(g.c.stride),
                    u64v(z0),
                ],
            )?;
            z0 += nz;
        }
        Ok(())
    }

    fn sparse_gather(
        &self,
        s: &SparseSpec<f32>,
        x: &Csr<Vec<u32>, Vec<f32>>,
        table: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        let rows = x.instances * x.rows_per_instance;
        if s.width == 0 || rows == 0 {
            return Ok(());
        }
        let (grid, block) = rows_grid(rows);
        self.launch(
            "gather_f32",
            grid,
            block,
            &mut [
                u64v(rows),
                u64v(x.rows_per_instance),
                u64v(x.cols),
                u64v(s.width),
                Arg::U32(&x.row_ptr),
                Arg::U32(&x.col),
                Arg::F32(&x.val),
                u64v(x.nnz),
                Arg::F32(table),
                u64v(s.t.off),
                u64v(s.t.stride),
                u64v(s.t_row_stride),
                u64v(s.t_col_stride),
                f32v(s.beta),
                Arg::F32Out(y),
            ],
        )
    }

    fn sparse_scatter(
        &self,
        s: &SparseSpec<f32>,
        x: &Csr<Vec<u32>, Vec<f32>>,
        y: &Vec<f32>,
        table: &mut Vec<f32>,
    ) -> Result<()> {
        let rows = x.instances * x.rows_per_instance;
        if s.width == 0 || rows == 0 {
            return Ok(());
        }
        let (grid, block) = rows_grid(rows);
        self.launch(
            "scatter_f32",
            grid,
            block,
            &mut [
                u64v(rows),
                u64v(x.rows_per_instance),
                u64v(x.cols),
                u64v(s.width),
                Arg::U32(&x.row_ptr),
                Arg::U32(&x.col),
                Arg::F32(&x.val),
                u64v(x.nnz),
                Arg::F32(y),
                Arg::F32Out(table),
                u64v(s.t.off),
                u64v(s.t.stride),
                u64v(s.t_row_stride),
                u64v(s.t_col_stride),
            ],
        )
    }

    fn add_bias(
        &self,
        rows: usize,
        width: usize,
        bias: &Vec<f32>,
        bias_view: View,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        if rows * width == 0 {
            return Ok(());
        }
        let n = y.len() / width * width;
        if n == 0 {
            return Ok(());
        }
        let (grid, block) = grid_1d(n);
        self.launch(
            "add_bias_f32",
            grid,
            block,
            &mut [
                Arg::F32Out(y),
                u64v(n),
                u64v(rows),
                u64v(width),
                Arg::F32(bias),
                u64v(bias_view.off),
                u64v(bias_view.stride),
            ],
        )
    }

    fn col_sum(
        &self,
        rows: usize,
        width: usize,
        y: &Vec<f32>,
        out: &mut Vec<f32>,
        out_view: View,
    ) -> Result<()> {
        let block = rows * width;
        if block == 0 {
            return Ok(());
        }
        let instances = y.len() / block;
        let col_tiles = width.div_ceil(32);
        let per_launch = ((i32::MAX as usize) / col_tiles).max(1);
        let mut k0 = 0usize;
        while k0 < instances {
            let nk = (instances - k0).min(per_launch);
            self.launch(
                "col_sum_f32",
                ((nk * col_tiles) as u32, 1, 1),
                (32, 8, 1),
                &mut [
                    Arg::F32(y),
                    u64v(rows),
                    u64v(width),
                    u64v(col_tiles),
                    Arg::F32Out(out),
                    u64v(out_view.off),
                    u64v(out_view.stride),
                    u64v(k0),
                ],
            )?;
            k0 += nk;
        }
        Ok(())
    }

    fn relu(&self, pre: &Vec<f32>, h: &mut Vec<f32>) -> Result<()> {
        let n = pre.len();
        if n == 0 {
            return Ok(());
        }
        let (grid, block) = grid_1d(n);
        self.launch(
            "relu_f32",
            grid,
            block,
            &mut [Arg::F32(pre), Arg::F32Out(h), u64v(n)],
        )
    }

    fn relu_mask(&self, pre: &Vec<f32>, grad: &mut Vec<f32>) -> Result<()> {
        let n = pre.len();
        if n == 0 {
            return Ok(());
        }
        let (grid, block) = grid_1d(n);
        self.launch(
            "relu_mask_f32",
            grid,
            block,
            &mut [Arg::F32(pre), Arg::F32Out(grad), u64v(n)],
        )
    }

    fn axpy(&self, alpha: f32, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        let n = x.len();
        if n == 0 {
            return Ok(());
        }
        let (grid, block) = grid_1d(n);
        self.launch(
            "axpy_f32",
            grid,
            block,
            &mut [f32v(alpha), Arg::F32(x), Arg::F32Out(y), u64v(n)],
        )
    }

    fn loss(
        &self,
        spec: &LossSpec<f32>,
        out: &Vec<f32>,
        y: &Csr<Vec<u32>, Vec<f32>>,
        importance: &Vec<f32>,
        row_loss: &mut Vec<f32>,
        dout: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        let rows = y.instances * y.rows_per_instance;
        if rows == 0 {
            return Ok(());
        }
        let kind = match spec.kind {
            LossKind::L2 => 0,
            LossKind::L1 => 1,
        };
        let want_grad = dout.is_some() as i32;
        let (grid, block) = rows_grid(rows);
        self.launch(
            "loss_f32",
            grid,
            block,
            &mut [
                i32v(kind),
                u64v(rows),
                u64v(y.cols),
                Arg::F32(out),
                Arg::U32(&y.row_ptr),
                Arg::U32(&y.col),
                Arg::F32(&y.val),
                u64v(y.nnz),
                Arg::F32(importance),
                f32v(spec.scale),
                Arg::F32Out(row_loss),
                match dout {
                    Some(d) => Arg::F32Out(d),
                    // Never written when want_grad = 0 (the CUDA backend passes `out`).
                    None => Arg::F32(out),
                },
                i32v(want_grad),
            ],
        )
    }

    fn adam(
        &self,
        s: &AdamSpec<f32>,
        params: &mut Vec<f32>,
        grads: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
    ) -> Result<()> {
        let n = params.len();
        if n == 0 {
            return Ok(());
        }
        let (grid, block) = grid_1d(n);
        self.launch(
            "adam_f32",
            grid,
            block,
            &mut [
                Arg::F32Out(params),
                Arg::F32(grads),
                Arg::F32Out(m),
                Arg::F32Out(v),
                u64v(n),
                f32v(s.beta1),
                f32v(1.0f32 - s.beta1),
                f32v(s.beta2),
                f32v(1.0f32 - s.beta2),
                f32v(s.eps),
                f32v(1.0f32 - s.lr * s.weight_decay),
                f32v(s.lr / s.bias_correction1),
                f32v(s.bias_correction2.sqrt()),
            ],
        )
    }
}
