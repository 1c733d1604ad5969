//! `gpu-bench` (run by `scripts/gpu-check.sh`): training throughput of `K` instances at
//! the seed setting (`tmcc_model::config::Config::default()` with the chosen variant), one
//! markdown table row per `K`:
//!
//! * **trainer**: the loop of `Trainer::step` — host sampling of a fresh sparse batch for
//!   every instance, upload, forward, backward, Adam (what a real run does);
//! * **device only**: forward + backward + Adam on one loaded batch (the kernels alone).
//!
//! Each is the number of steps per second of a loop under a time budget
//! ([`Budgeted`]: at least a few steps, then until `--seconds` have passed); the device is
//! synchronised before the clock stops. "model-steps/s" is instances × steps per second.
//!
//! ```text
//! cargo run --release -p tmcc-benches --features cuda --bin gpu-bench -- \
//!     --device cuda --instances 1,64,1024,8192 [--variant emb_res] [--seconds 8]
//! ```
//! Large `K` are built from at most [`DISTINCT`] distinct initial instances, repeated (each
//! instance still draws its own data); "set-up s" is building the model and uploading it.

use std::time::Instant;

use clap::Parser;
use tmcc_benches::machine::Machine;
use tmcc_benches::setting::{seed_setting, variant_named};
use tmcc_benches::stats::Budgeted;
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{Backend, DeviceChoice, DeviceKind};
use tmcc_model::batch::{HostBatch, Sampler};
use tmcc_model::config::Variant;
use tmcc_model::fast::{FastModel, Workspace};
use tmcc_model::init::{rng, Stream};
use tmcc_model::optim::adam_spec;
use tmcc_model::Model;

/// Distinct initial instances of a large-`K` model.
const DISTINCT: usize = 64;
/// The device-only loop synchronises every this many steps (keeps the queue bounded).
const SYNC_EVERY: u32 = 8;

/// Training throughput of many instances on a device.
#[derive(Parser)]
#[command(name = "gpu-bench")]
struct Args {
    /// Where to train: `auto` (CUDA if a device can be used, else the CPU), `cpu`, `cuda`.
    #[arg(long, default_value = "auto", value_name = "auto|cpu|cuda")]
    device: DeviceChoice,
    /// Instance counts, one table row each.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024,8192")]
    instances: Vec<usize>,
    /// The model variant.
    #[arg(long, default_value = "emb_res", value_parser = variant_named)]
    variant: Variant,
    /// Time budget per measurement (trainer, device only), seconds.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// Leave out the table header (to append rows to an earlier table).
    #[arg(long)]
    no_header: bool,
}

/// `k` blocks: block `i` is block `i mod k0` of `v` (which holds `k0` equal blocks).
fn repeat(v: &[f32], k0: usize, k: usize) -> Vec<f32> {
    let per = v.len() / k0;
    (0..k)
        .flat_map(|i| v[(i % k0) * per..][..per].iter().copied())
        .collect()
}

/// `k` instances at the seed setting; beyond [`DISTINCT`], the first ones repeated.
fn build_model(variant: Variant, k: usize) -> Model<f32> {
    let cfg = seed_setting(variant, k);
    let k0 = k.min(DISTINCT);
    let mut m = Model::<f32>::new(&seed_setting(variant, k0)).expect("valid config");
    if k > k0 {
        m.params = repeat(&m.params, k0, k);
        m.embed = m.embed.as_deref().map(|e| repeat(e, k0, k));
        m.mixing = m.mixing.as_deref().map(|x| repeat(x, k0, k));
        m.cfg = cfg;
    }
    m
}

/// Set-up seconds, trainer steps/s and device-only steps/s of `model` on `bk`.
fn measure<B: Backend<f32> + Clone>(
    bk: B,
    sync: &dyn Fn(&B),
    model: Model<f32>,
    seconds: f64,
) -> Result<(f64, f64, f64), String> {
    let cfg = model.cfg.clone();
    let err = |e: tmcc_model::Error| e.to_string();
    // Device only: one batch, forward + backward + Adam repeatedly.
    let t_setup = Instant::now();
    let mut fast = FastModel::new(bk.clone(), &model).map_err(err)?;
    let mut ws = fast.workspace(cfg.batch_size).map_err(err)?;
    let rngs = (0..cfg.instances)
        .map(|k| rng(cfg.instance_seed(k), Stream::Data))
        .collect();
    let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
    let mut sampler = Sampler::<f32>::new(rngs, ps);
    let mut batch = HostBatch::default();
    sampler.sample(cfg.batch_size, cfg.n_feat, &mut batch);
    fast.load_batch(&mut ws, &batch).map_err(err)?;
    sync(fast.bk());
    let setup = t_setup.elapsed().as_secs_f64();
    let scale = 1.0 / (cfg.batch_size * cfg.n_feat) as f32;
    let spec = adam_spec::<f32>(&cfg, 0);
    let device_step = |fast: &mut FastModel<f32, B>, ws: &mut Workspace<f32, B>| {
        fast.forward(ws, scale, true).map_err(err)?;
        fast.backward(ws).map_err(err)?;
        fast.adam_step(&spec).map_err(err)
    };
    device_step(&mut fast, &mut ws)?; // warm-up
    sync(fast.bk());
    let mut run = Budgeted::start(seconds);
    while run.more() {
        device_step(&mut fast, &mut ws)?;
        if run.count().is_multiple_of(SYNC_EVERY) {
            sync(fast.bk());
        }
    }
    sync(fast.bk());
    let device = run.rate();
    // The training loop of `Trainer::step`: a fresh batch for every instance each step.
    // (Written out here so that one `FastModel` serves both measurements: building one
    // computes K residual tables on the host, which dominates set-up at K = 8192.)
    let mut run = Budgeted::start(seconds);
    while run.more() {
        sampler.sample(cfg.batch_size, cfg.n_feat, &mut batch);
        fast.load_batch(&mut ws, &batch).map_err(err)?;
        device_step(&mut fast, &mut ws)?;
    }
    sync(fast.bk());
    let trainer = run.rate();
    Ok((setup, trainer, device))
}

fn main() {
    let args = Args::parse();
    let (kind, note) = match args.device.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gpu-bench: {e}");
            std::process::exit(1);
        }
    };
    if let Some(n) = note {
        eprintln!("gpu-bench: {n}");
    }
    let device_name = match kind {
        DeviceKind::Cpu => Machine::now().cpu_backend(),
        DeviceKind::Cuda => cuda_name(),
    };
    if !args.no_header {
        println!(
            "| backend | variant | K | set-up s | trainer steps/s | trainer model-steps/s | \
             device-only steps/s | device-only model-steps/s |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
    }
    let variant = args.variant.name();
    for &k in &args.instances {
        let t0 = Instant::now();
        let model = build_model(args.variant, k);
        let build_s = t0.elapsed().as_secs_f64();
        let r = match kind {
            DeviceKind::Cpu => measure(Cpu, &|_| {}, model, args.seconds),
            DeviceKind::Cuda => measure_cuda(model, args.seconds),
        };
        match r {
            Ok((setup, trainer, device)) => println!(
                "| {device_name} | {variant} | {k} | {:.1} | {trainer:.2} | {:.0} | {device:.2} | {:.0} |",
                build_s + setup,
                trainer * k as f64,
                device * k as f64
            ),
            Err(e) => println!("| {device_name} | {variant} | {k} | {build_s:.1} | error: {e} | | | |"),
        }
    }
}

/// The CUDA device's name, or why there is none (the stub of a build without `cuda`
/// says so).
fn cuda_name() -> String {
    tmcc_kernels::cuda::Cuda::new(0)
        .map(|c| c.describe())
        .unwrap_or_else(|e| e.to_string())
}

fn measure_cuda(model: Model<f32>, seconds: f64) -> Result<(f64, f64, f64), String> {
    use tmcc_kernels::cuda::Cuda;
    let bk = Cuda::new(0).map_err(|e| e.to_string())?;
    let sync = |b: &Cuda| b.synchronize().expect("CUDA synchronize");
    measure(bk, &sync, model, seconds)
}
