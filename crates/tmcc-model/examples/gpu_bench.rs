//! Training throughput of `K` instances at the seed setting (`F=100, H=50, D=1000,
//! B=1024, p=0.01`), one markdown table row per `K`:
//!
//! * **trainer**: the loop of `Trainer::step` — host sampling of a fresh sparse batch for every
//!   instance, upload, forward, backward, Adam (what a real run does);
//! * **device only**: forward + backward + Adam on one loaded batch (the kernels alone).
//!
//! "model-steps/s" is instances × steps per second. Used by `scripts/gpu-check.sh`.
//!
//! ```text
//! cargo run --release -p tmcc-model --features cuda --example gpu_bench -- \
//!     --device cuda --instances 1,64,1024,8192 [--variant emb_res] [--seconds 8]
//! ```
//! Large `K` are built from at most 64 distinct initial instances, repeated (each instance
//! still draws its own data); "set-up s" is building the model and uploading it.

use std::time::Instant;

use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{Backend, DeviceChoice, DeviceKind};
use tmcc_model::batch::{HostBatch, Sampler};
use tmcc_model::config::{Config, Variant};
use tmcc_model::fast::FastModel;
use tmcc_model::init::{rng, Stream};
use tmcc_model::optim::adam_spec;
use tmcc_model::Model;

struct Args {
    device: DeviceChoice,
    instances: Vec<usize>,
    variant: Variant,
    /// Time budget per measurement (trainer, device only), seconds.
    seconds: f64,
    header: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        device: DeviceChoice::Auto,
        instances: vec![1, 64, 1024, 8192],
        variant: Variant::EmbRes,
        seconds: 8.0,
        header: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.device = value()?.parse()?,
            "--instances" => {
                a.instances = value()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("--instances: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--variant" => {
                let v = value()?;
                a.variant = *Variant::ALL
                    .iter()
                    .find(|x| x.name() == v)
                    .ok_or(format!("unknown variant {v}"))?;
            }
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--no-header" => a.header = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// `k` blocks: block `i` is block `i mod k0` of `v` (which holds `k0` equal blocks).
fn repeat(v: &[f32], k0: usize, k: usize) -> Vec<f32> {
    let per = v.len() / k0;
    (0..k)
        .flat_map(|i| v[(i % k0) * per..][..per].iter().copied())
        .collect()
}

/// `k` instances at the seed setting; beyond 64, the first 64 repeated.
fn build_model(variant: Variant, k: usize) -> Model<f32> {
    let cfg = Config {
        variant,
        instances: k,
        ..Config::default()
    };
    let k0 = k.min(64);
    let mut m = Model::<f32>::new(&Config {
        instances: k0,
        ..cfg.clone()
    })
    .expect("valid config");
    if k > k0 {
        m.params = repeat(&m.params, k0, k);
        m.embed = m.embed.as_deref().map(|e| repeat(e, k0, k));
        m.mixing = m.mixing.as_deref().map(|x| repeat(x, k0, k));
        m.cfg = cfg;
    }
    m
}

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
    let device_step = |fast: &mut FastModel<f32, B>,
                       ws: &mut tmcc_model::fast::Workspace<f32, B>|
     -> Result<(), String> {
        fast.forward(ws, scale, true).map_err(err)?;
        fast.backward(ws).map_err(err)?;
        fast.adam_step(&spec).map_err(err)
    };
    device_step(&mut fast, &mut ws)?; // warm-up
    sync(fast.bk());
    let t0 = Instant::now();
    let mut n = 0u32;
    while n < 3 || (t0.elapsed().as_secs_f64() < seconds && n < 1000) {
        device_step(&mut fast, &mut ws)?;
        n += 1;
        if n.is_multiple_of(8) {
            sync(fast.bk());
        }
    }
    sync(fast.bk());
    let device = n as f64 / t0.elapsed().as_secs_f64();
    // The training loop of `Trainer::step`: a fresh batch for every instance each step.
    // (Written out here so that one `FastModel` serves both measurements: building one
    // computes K residual tables on the host, which dominates set-up at K = 8192.)
    let t0 = Instant::now();
    let mut n = 0u32;
    while n < 3 || (t0.elapsed().as_secs_f64() < seconds && n < 1000) {
        sampler.sample(cfg.batch_size, cfg.n_feat, &mut batch);
        fast.load_batch(&mut ws, &batch).map_err(err)?;
        device_step(&mut fast, &mut ws)?;
        n += 1;
    }
    sync(fast.bk());
    let trainer = n as f64 / t0.elapsed().as_secs_f64();
    Ok((setup, trainer, device))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::exit(2);
        }
    };
    let (kind, note) = match args.device.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::exit(1);
        }
    };
    if let Some(n) = note {
        eprintln!("gpu_bench: {n}");
    }
    let device_name = match kind {
        DeviceKind::Cpu => format!("cpu ({} rayon threads)", rayon::current_num_threads()),
        DeviceKind::Cuda => cuda_name(),
    };
    if args.header {
        println!(
            "| backend | variant | K | set-up s | trainer steps/s | trainer model-steps/s | \
             device-only steps/s | device-only model-steps/s |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
    }
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
                "| {device_name} | {} | {k} | {:.1} | {trainer:.2} | {:.0} | {device:.2} | {:.0} |",
                args.variant.name(),
                build_s + setup,
                trainer * k as f64,
                device * k as f64
            ),
            Err(e) => println!(
                "| {device_name} | {} | {k} | {build_s:.1} | error: {e} | | | |",
                args.variant.name()
            ),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_name() -> String {
    tmcc_kernels::cuda::Cuda::new(0)
        .map(|c| c.describe())
        .unwrap_or_else(|e| e.to_string())
}

#[cfg(feature = "cuda")]
fn measure_cuda(model: Model<f32>, seconds: f64) -> Result<(f64, f64, f64), String> {
    use tmcc_kernels::cuda::Cuda;
    let bk = Cuda::new(0).map_err(|e| e.to_string())?;
    let sync = |b: &Cuda| b.synchronize().expect("CUDA synchronize");
    measure(bk, &sync, model, seconds)
}

#[cfg(not(feature = "cuda"))]
fn cuda_name() -> String {
    "cuda (not built)".into()
}

#[cfg(not(feature = "cuda"))]
fn measure_cuda(_model: Model<f32>, _seconds: f64) -> Result<(f64, f64, f64), String> {
    Err("built without the `cuda` feature".into())
}
