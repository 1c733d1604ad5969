//! The CUDA backend: hand-written kernels (`kernels/*.cu`, compiled at run time by NVRTC,
//! see [`nvrtc`]) launched through cudarc, every operation one launch for all `K`
//! instances (grid dimension or row index over instances). No cuBLAS.
//!
//! | op | parallelization |
//! |---|---|
//! | `gemm` | 64×64 (or 32×32 for `m` or `n` ≤ 32) tiles of `C` per block, 16×16 threads, `k` in slices of 16 staged in shared memory; grid `z` = instance |
//! | `sparse_gather` | one warp per CSR row (8 rows per block), lanes over the width; the CPU's order of additions |
//! | `sparse_scatter` | one warp per CSR row, `atomicAdd` into the table row of each active feature |
//! | `add_bias`, `relu`, `relu_mask`, `axpy`, `adam`, `fill` | grid-stride element loops |
//! | `col_sum` | one 32×8 block per (instance, 32 columns), fixed-order shared-memory reduction |
//! | `loss` | one warp per row: labels staged per 32-column chunk in shared memory, warp-shuffle sum |
//!
//! The bounds checks of the CPU backend run on the host before each launch and return
//! [`KernelError`]; the only check not mirrored is `row_ptr[rows] == nnz` (it would need a
//! device read): the kernels clamp row offsets to `nnz` and skip columns `≥ F` instead, so
//! a malformed batch cannot touch memory outside its buffers.
//!
//! Rounding: `elementwise.cu` and `sparse.cu` are compiled with `--fmad=false`, so `relu`,
//! `relu_mask`, `axpy`, `add_bias`, `fill`, Adam, the gather and `∂L/∂out` round exactly as
//! the CPU backend does (equal bits for equal inputs); the products (fused multiply-adds,
//! tiled order), column sums, the scatter (atomics: order not fixed) and the per-row loss
//! sums agree with it to rounding (`tests/backend_parity.rs` states the tolerances).
//!
//! All work goes to the context's default stream, in order; reads synchronize. Backends
//! created for the same device share one context, stream and set of loaded kernels
//! (cached per process by [`Cuda::new`]).

mod dense;
pub mod nvrtc;
mod sparse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream};

use crate::{AdamSpec, Backend, Csr, Gemm, KernelError, LossSpec, Result, SparseSpec, View};
use nvrtc::{no_panic, KernelSource, Target};

/// The loaded kernels of one device.
struct Kernels {
    gemm_64: CudaFunction,
    gemm_32: CudaFunction,
    fill: CudaFunction,
    add_bias: CudaFunction,
    col_sum: CudaFunction,
    relu: CudaFunction,
    relu_mask: CudaFunction,
    axpy: CudaFunction,
    adam: CudaFunction,
    gather: CudaFunction,
    scatter: CudaFunction,
    loss: CudaFunction,
}

/// One initialized device: context, stream and kernels.
struct Device {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    k: Kernels,
    name: String,
    /// Compute capability as `10·major + minor`.
    arch: u32,
    /// How the kernels were built, e.g. `CUBIN sm_90`.
    built: String,
}

/// The CUDA backend on one device. Cheap to clone (shares the device).
#[derive(Clone)]
pub struct Cuda {
    dev: Arc<Device>,
}

impl std::fmt::Debug for Cuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cuda")
            .field("ordinal", &self.dev.ctx.ordinal())
            .field("name", &self.dev.name)
            .field("arch", &self.dev.arch)
            .field("kernels", &self.dev.built)
            .finish()
    }
}

fn device_err<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> KernelError {
    move |e| KernelError::Device(format!("{what}: {e:?}"))
}

/// Compiles `src` for the device (CUBIN first, then PTX) and loads it.
fn load_source(
    ctx: &Arc<CudaContext>,
    src: &KernelSource,
    arch: u32,
) -> std::result::Result<(Arc<CudaModule>, Target), String> {
    let mut errors = Vec::new();
    for target in [Target::Cubin(arch), Target::Ptx(arch)] {
        let compiled = match nvrtc::compile(src, target) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let image = match target {
            Target::Cubin(_) => cudarc::nvrtc::Ptx::from_binary(compiled.image),
            Target::Ptx(_) => {
                let text: Vec<u8> = compiled.image.into_iter().take_while(|&b| b != 0).collect();
                cudarc::nvrtc::Ptx::from_src(String::from_utf8_lossy(&text).into_owned())
            }
        };
        match no_panic("cuModuleLoadData", || {
            ctx.load_module(image).map_err(|e| format!("{e:?}"))
        }) {
            Ok(m) => return Ok((m, target)),
            Err(e) => errors.push(format!("{} ({target}): loading failed: {e}", src.name)),
        }
    }
    Err(errors.join("; "))
}

fn function(m: &Arc<CudaModule>, name: &str) -> std::result::Result<CudaFunction, String> {
    m.load_function(name)
        .map_err(|e| format!("kernel `{name}` not found: {e:?}"))
}

/// Creates the context, compiles and loads every kernel source.
fn init_device(ordinal: usize) -> std::result::Result<Device, String> {
    // SAFETY: only probes whether the driver library can be opened.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda.so) found".into());
    }
    let ctx = no_panic("CUDA driver", || {
        CudaContext::new(ordinal).map_err(|e| format!("no usable CUDA device {ordinal}: {e:?}"))
    })?;
    // SAFETY: everything of this backend runs on one stream, in order, so cudarc's
    // cross-stream events (two per buffer, recorded at every use) are not needed; this is
    // set before any buffer of the context exists.
    unsafe { ctx.disable_event_tracking() };
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| format!("compute capability: {e:?}"))?;
    let arch = (10 * major + minor) as u32;
    let name = ctx.name().unwrap_or_else(|_| "unknown CUDA device".into());
    nvrtc::nvrtc_available().map_err(|e| format!("{name} found, but {e}"))?;
    let [gemm, elem, sparse] = nvrtc::SOURCES;
    let (gm, gt) = load_source(&ctx, &gemm, arch)?;
    let (em, _) = load_source(&ctx, &elem, arch)?;
    let (sm, _) = load_source(&ctx, &sparse, arch)?;
    let k = Kernels {
        gemm_64: function(&gm, "gemm_64")?,
        gemm_32: function(&gm, "gemm_32")?,
        fill: function(&em, "fill_f32")?,
        add_bias: function(&em, "add_bias_f32")?,
        col_sum: function(&em, "col_sum_f32")?,
        relu: function(&em, "relu_f32")?,
        relu_mask: function(&em, "relu_mask_f32")?,
        axpy: function(&em, "axpy_f32")?,
        adam: function(&em, "adam_f32")?,
        gather: function(&sm, "gather_f32")?,
        scatter: function(&sm, "scatter_f32")?,
        loss: function(&sm, "loss_f32")?,
    };
    let stream = ctx.default_stream();
    Ok(Device {
        ctx,
        stream,
        k,
        name,
        arch,
        built: gt.to_string(),
    })
}

impl Cuda {
    /// The backend on device `ordinal`. The first call per device creates the context and
    /// compiles the kernels (NVRTC, about a second); later calls share them. A missing
    /// driver, device or NVRTC is an `Err` with a one-line reason, never a panic.
    pub fn new(ordinal: usize) -> Result<Self> {
        type Cache = Mutex<HashMap<usize, std::result::Result<Arc<Device>, String>>>;
        static DEVICES: OnceLock<Cache> = OnceLock::new();
        let mut cache = DEVICES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let entry = cache
            .entry(ordinal)
            .or_insert_with(|| no_panic("CUDA init", || init_device(ordinal)).map(Arc::new));
        match entry {
            Ok(dev) => Ok(Self { dev: dev.clone() }),
            Err(e) => Err(KernelError::Device(e.clone())),
        }
    }

    /// E.g. `"NVIDIA H200 (sm_90, kernels: CUBIN sm_90)"`.
    pub fn describe(&self) -> String {
        format!(
            "{} (sm_{}, kernels: {})",
            self.dev.name, self.dev.arch, self.dev.built
        )
    }

    /// Free memory on the device, in bytes (`cuMemGetInfo`).
    pub fn free_memory(&self) -> Result<usize> {
        self.dev
            .ctx
            .mem_get_info()
            .map(|(free, _total)| free)
            .map_err(device_err("memory info"))
    }

    /// Waits for all queued work; reports an asynchronous kernel fault, if any.
    pub fn synchronize(&self) -> Result<()> {
        self.dev
            .stream
            .synchronize()
            .map_err(device_err("synchronize"))
    }

    fn stream(&self) -> &Arc<CudaStream> {
        &self.dev.stream
    }
}

impl Backend<f32> for Cuda {
    type Buf = CudaSlice<f32>;
    type Idx = CudaSlice<u32>;

    fn name(&self) -> &'static str {
        "cuda"
    }
    fn parallel_instances(&self) -> bool {
        false
    }
    fn zeros(&self, len: usize) -> Result<CudaSlice<f32>> {
        if len == 0 {
            return empty(self.stream());
        }
        self.stream()
            .alloc_zeros(len)
            .map_err(device_err("alloc_zeros"))
    }
    fn upload(&self, host: &[f32]) -> Result<CudaSlice<f32>> {
        upload(self.stream(), host)
    }
    fn upload_idx(&self, host: &[u32]) -> Result<CudaSlice<u32>> {
        upload(self.stream(), host)
    }
    fn write(&self, dst: &mut CudaSlice<f32>, host: &[f32]) -> Result<()> {
        write(self.stream(), dst, host)
    }
    fn write_idx(&self, dst: &mut CudaSlice<u32>, host: &[u32]) -> Result<()> {
        write(self.stream(), dst, host)
    }
    fn read(&self, src: &CudaSlice<f32>) -> Result<Vec<f32>> {
        if src.is_empty() {
            return Ok(Vec::new());
        }
        let v = self
            .stream()
            .clone_dtoh(src)
            .map_err(device_err("copy to host"))?;
        self.synchronize()?;
        Ok(v)
    }
    fn len(&self, buf: &CudaSlice<f32>) -> usize {
        buf.len()
    }
    fn fill(&self, buf: &mut CudaSlice<f32>, value: f32) -> Result<()> {
        dense::fill(&self.dev, buf, value)
    }

    fn gemm(
        &self,
        g: &Gemm<f32>,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
    ) -> Result<()> {
        dense::gemm(&self.dev, g, a, b, c)
    }
    fn sparse_gather(
        &self,
        s: &SparseSpec<f32>,
        x: &Csr<CudaSlice<u32>, CudaSlice<f32>>,
        table: &CudaSlice<f32>,
        y: &mut CudaSlice<f32>,
    ) -> Result<()> {
        sparse::gather(&self.dev, s, x, table, y)
    }
    fn sparse_scatter(
        &self,
        s: &SparseSpec<f32>,
        x: &Csr<CudaSlice<u32>, CudaSlice<f32>>,
        y: &CudaSlice<f32>,
        table: &mut CudaSlice<f32>,
    ) -> Result<()> {
        sparse::scatter(&self.dev, s, x, y, table)
    }
    fn add_bias(
        &self,
        rows: usize,
        width: usize,
        bias: &CudaSlice<f32>,
        bias_view: View,
        y: &mut CudaSlice<f32>,
    ) -> Result<()> {
        dense::add_bias(&self.dev, rows, width, bias, bias_view, y)
    }
    fn col_sum(
        &self,
        rows: usize,
        width: usize,
        y: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
        out_view: View,
    ) -> Result<()> {
        dense::col_sum(&self.dev, rows, width, y, out, out_view)
    }
    fn relu(&self, pre: &CudaSlice<f32>, h: &mut CudaSlice<f32>) -> Result<()> {
        dense::relu(&self.dev, pre, h)
    }
    fn relu_mask(&self, pre: &CudaSlice<f32>, grad: &mut CudaSlice<f32>) -> Result<()> {
        dense::relu_mask(&self.dev, pre, grad)
    }
    fn axpy(&self, alpha: f32, x: &CudaSlice<f32>, y: &mut CudaSlice<f32>) -> Result<()> {
        dense::axpy(&self.dev, alpha, x, y)
    }
    fn loss(
        &self,
        spec: &LossSpec<f32>,
        out: &CudaSlice<f32>,
        y: &Csr<CudaSlice<u32>, CudaSlice<f32>>,
        importance: &CudaSlice<f32>,
        row_loss: &mut CudaSlice<f32>,
        dout: Option<&mut CudaSlice<f32>>,
    ) -> Result<()> {
        sparse::loss(&self.dev, spec, out, y, importance, row_loss, dout)
    }
    fn adam(
        &self,
        spec: &AdamSpec<f32>,
        params: &mut CudaSlice<f32>,
        grads: &CudaSlice<f32>,
        m: &mut CudaSlice<f32>,
        v: &mut CudaSlice<f32>,
    ) -> Result<()> {
        dense::adam(&self.dev, spec, params, grads, m, v)
    }
}

/// An empty buffer. Zero-byte allocations fail on some drivers (`cuMemAlloc` documents
/// `CUDA_ERROR_INVALID_VALUE`), so it is backed by one element and has length 0.
fn empty<T: cudarc::driver::DeviceRepr>(stream: &Arc<CudaStream>) -> Result<CudaSlice<T>> {
    // SAFETY: the one element is never read (the slice has length 0); the pointer comes
    // from `alloc` on this stream and is freed by the new slice's drop (event tracking is
    // off, so `upgrade_device_ptr` creates no events).
    unsafe {
        let ptr = stream.alloc::<T>(1).map_err(device_err("alloc"))?.leak();
        Ok(stream.upgrade_device_ptr(ptr, 0))
    }
}

fn upload<T: cudarc::driver::DeviceRepr>(
    stream: &Arc<CudaStream>,
    host: &[T],
) -> Result<CudaSlice<T>> {
    if host.is_empty() {
        return empty(stream);
    }
    stream
        .clone_htod(host)
        .map_err(device_err("copy to device"))
}

fn write<T: cudarc::driver::DeviceRepr>(
    stream: &Arc<CudaStream>,
    dst: &mut CudaSlice<T>,
    host: &[T],
) -> Result<()> {
    if dst.len() != host.len() {
        *dst = upload(stream, host)?;
    } else if !host.is_empty() {
        stream
            .memcpy_htod(host, dst)
            .map_err(device_err("copy to device"))?;
    }
    Ok(())
}

pub(crate) use crate::bounds::{check_out, check_view};

/// Device 0 for [`crate::device::cuda_available`], or the one-line reason it cannot be used.
pub(crate) fn probe() -> std::result::Result<Cuda, String> {
    Cuda::new(0).map_err(|e| match e {
        KernelError::Device(msg) => msg,
        other => other.to_string(),
    })
}
