//! `cargo xtask bench`: tmcc's training step against PyTorch, timed in one run on this
//! machine, with the multiply-add count of each path against the measured matrix-multiply
//! rate, the cost of many instances side by side, and peak memory.
//!
//! Everything is measured in the same invocation: the matrix-multiply rate (the CPU
//! backend's own gemm on a `1024×1000·1000×50` f32 product), tmcc's `Trainer::step` (fresh
//! sparse batch, gradient, Adam) for `emb_res` (B = 1024) and `mix` (B = 2048) at the seed
//! setting, the PyTorch loop `benches/python/torch_step.py` as a subprocess with the rayon
//! thread count, a 64-instance step against 64 single-instance steps (interleaved), and
//! the peak resident memory of `K` = 1, 64, 1024 `emb_res` instances (each in a child
//! process: this binary again with the hidden `--mem-child K`).
//!
//! `--write` also writes the report to `docs/performance.md` (temporary file + rename).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{Backend, Gemm, Operand, View};
use tmcc_model::config::{Config, Variant};
use tmcc_model::train::Trainer;
use tmcc_model::Model;

#[derive(clap::Args)]
pub struct Args {
    /// Also write the report to docs/performance.md.
    #[arg(long)]
    write: bool,
    /// Timed tmcc steps per measurement (the PyTorch loop runs a fifth of these, ≥ 30).
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Instance counts of the peak-memory measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    mem_instances: Vec<usize>,
    /// Skip the PyTorch comparison.
    #[arg(long)]
    no_torch: bool,
    /// Internal: measure peak memory of `K` instances and print one JSON line.
    #[arg(long, hide = true)]
    mem_child: Option<usize>,
}

/// Order statistics of step times, seconds.
#[derive(Clone, Copy, Debug)]
struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
}

fn stats(mut t: Vec<f64>) -> Stats {
    t.sort_by(f64::total_cmp);
    // Linear interpolation between order statistics (numpy's default, as torch_step.py).
    let q = |p: f64| {
        let pos = (t.len() - 1) as f64 * p;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        t[lo] + (t[hi] - t[lo]) * (pos - lo as f64)
    };
    Stats {
        median: q(0.5),
        p10: q(0.1),
        p90: q(0.9),
    }
}

/// The seed setting with `variant`, `instances` and batch `b`.
fn seed_config(variant: Variant, instances: usize, b: usize) -> Config {
    Config {
        variant,
        instances,
        batch_size: b,
        steps: u64::MAX,
        ..Config::default()
    }
}

fn trainer(cfg: &Config) -> Result<Trainer<f32, Cpu>> {
    Ok(Trainer::new(Cpu, Model::<f32>::new(cfg)?)?)
}

/// `steps` timed `Trainer::step`s after 20 untimed ones.
fn time_steps(t: &mut Trainer<f32, Cpu>, steps: usize) -> Result<Vec<f64>> {
    for _ in 0..20 {
        t.step(false)?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t0 = Instant::now();
        t.step(false)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// The CPU backend's gemm on `1024×1000·1000×50` (f32): seconds per product, called from
/// the main thread (one thread) or from a rayon worker (its two halves on two threads).
fn matmul_times(reps: usize, two_threads: bool) -> Result<Vec<f64>> {
    let (m, k, n) = (1024, 1000, 50);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut c = vec![0f32; m * n];
    let g = Gemm {
        batch: 1,
        m,
        n,
        k,
        alpha: 1.0f32,
        beta: 0.0,
        a: Operand::n(View::packed(m * k)),
        b: Operand::n(View::packed(k * n)),
        c: View::packed(m * n),
    };
    let mut time = || -> Result<Vec<f64>> {
        for _ in 0..5 {
            Cpu.gemm(&g, &a, &b, &mut c)?;
        }
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t0 = Instant::now();
            Cpu.gemm(&g, &a, &b, &mut c)?;
            times.push(t0.elapsed().as_secs_f64());
        }
        Ok(times)
    };
    if two_threads {
        rayon::scope(|_| time())
    } else {
        time()
    }
}

/// Multiply-adds per step of tmcc's path for the seed variants (`emb_res`, `mix`; no
/// biases, untied): see the report for the derivation.
fn tmcc_macs(cfg: &Config) -> f64 {
    let (b, f, h) = (
        cfg.batch_size as f64,
        cfg.n_feat as f64,
        cfg.n_hidden as f64,
    );
    let nnz = b * f * cfg.p;
    let emb = if cfg.variant.has_embedding() {
        4.0 * f * cfg.d_emb as f64 * h
    } else {
        0.0
    };
    emb + 2.0 * b * h * h + 4.0 * f * f * h + 2.0 * f * h * h + 6.0 * nnz * h
}

/// Multiply-adds per step of the dense PyTorch loop (`torch_step.py`).
fn torch_macs(cfg: &Config) -> f64 {
    let (b, f, h, d) = (
        cfg.batch_size as f64,
        cfg.n_feat as f64,
        cfg.n_hidden as f64,
        cfg.d_emb as f64,
    );
    match cfg.variant {
        Variant::EmbRes => 3.0 * b * d * f + 5.0 * b * d * h,
        _ => 5.0 * b * f * h + b * f * f,
    }
}

/// The result of one `torch_step.py` run.
struct TorchRun {
    version: String,
    threads: usize,
    stats: Stats,
}

enum Torch {
    Ran(TorchRun),
    Missing(String),
}

fn run_torch(
    root: &Path,
    model: &str,
    batch: usize,
    threads: usize,
    steps: usize,
) -> Result<Torch> {
    let script = root.join("benches/python/torch_step.py");
    let out = match Command::new("python3")
        .arg(&script)
        .args(["--model", model, "--batch", &batch.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &steps.to_string(), "--warmup", "5"])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Torch::Missing(
                "`python3` is not on PATH; install Python 3 and torch (benches/python/README.md)"
                    .into(),
            ))
        }
        Err(e) => return Err(e).with_context(|| format!("running python3 {}", script.display())),
    };
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Ok(Torch::Missing(msg));
        }
        _ => bail!(
            "torch_step.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .context("torch_step.py printed nothing")?;
    let v: serde_json::Value = serde_json::from_str(line).context("torch_step.py output")?;
    let num = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("torch_step.py: no `{k}`"))
    };
    Ok(Torch::Ran(TorchRun {
        version: v["torch_version"].as_str().unwrap_or("?").to_string(),
        threads: v["threads"].as_u64().unwrap_or(0) as usize,
        stats: Stats {
            median: num("median_step_s")?,
            p10: num("p10_step_s")?,
            p90: num("p90_step_s")?,
        },
    }))
}

/// `VmHWM` (peak resident set) of this process, KiB.
fn vm_hwm_kib() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    let line = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

/// The child of the memory measurement: `K` emb_res instances, three steps.
fn mem_child(k: usize) -> Result<()> {
    let baseline = vm_hwm_kib()?;
    let cfg = seed_config(Variant::EmbRes, k, 1024);
    let mut t = trainer(&cfg)?;
    for i in 0..3 {
        t.step(i == 2)?;
    }
    let peak = vm_hwm_kib()?;
    println!("{{\"k\": {k}, \"baseline_kib\": {baseline}, \"peak_kib\": {peak}}}");
    Ok(())
}

struct Mem {
    k: usize,
    baseline: u64,
    peak: u64,
}

fn run_mem_child(k: usize) -> Result<Mem> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["bench", "--mem-child", &k.to_string()])
        .output()?;
    if !out.status.success() {
        bail!(
            "memory child for K = {k} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())?;
    let num = |key: &str| {
        v[key]
            .as_u64()
            .with_context(|| format!("memory child: `{key}`"))
    };
    Ok(Mem {
        k,
        baseline: num("baseline_kib")?,
        peak: num("peak_kib")?,
    })
}

/// `YYYY-MM-DD HH:MM UTC` of now (civil-from-days, proleptic Gregorian).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The 1-minute load average (other processes on the machine).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn ms(s: f64) -> String {
    format!("{:.3}", s * 1e3)
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1024.0 * 1024.0))
}

pub fn run(args: Args) -> Result<()> {
    if let Some(k) = args.mem_child {
        return mem_child(k);
    }
    let root = crate::workspace_root();
    let threads = rayon::current_num_threads();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let steps = args.steps.max(30);
    let torch_steps = (steps / 5).max(30);
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    argv.retain(|a| a != "--write");
    let command = format!("cargo xtask {}", argv.join(" "));

    let load_before = load_average();
    eprintln!("[1/6] matrix-multiply rate");
    // Timed in three blocks spread over the run (here, between the models, at the end),
    // so that the rate and the steps see the same load.
    let mut mm_times = matmul_times(40, true)?;
    let mut mm1_times = matmul_times(20, false)?;

    // tmcc and PyTorch, per model; tmcc timed before and after PyTorch (pooled), so that
    // a change in the machine's load during the run shows in both.
    let cases = [
        (Variant::EmbRes, "emb_res", 1024usize),
        (Variant::Mix, "mix", 2048),
    ];
    let mut rows = Vec::new();
    let mut torch_missing = None;
    let mut torch_version = String::new();
    for (i, (variant, name, b)) in cases.into_iter().enumerate() {
        let cfg = seed_config(variant, 1, b);
        eprintln!("[{}/6] {name} B={b}: tmcc, PyTorch, tmcc", i + 2);
        if i > 0 {
            mm_times.extend(matmul_times(40, true)?);
            mm1_times.extend(matmul_times(20, false)?);
        }
        let mut t = trainer(&cfg)?;
        let mut times = time_steps(&mut t, steps / 2)?;
        let torch = if args.no_torch {
            None
        } else {
            match run_torch(&root, name, b, threads, torch_steps)? {
                Torch::Ran(r) => {
                    torch_version = format!("{} ({} threads)", r.version, r.threads);
                    Some(r.stats)
                }
                Torch::Missing(msg) => {
                    torch_missing = Some(msg);
                    None
                }
            }
        };
        times.extend(time_steps(&mut t, steps - steps / 2)?);
        rows.push((name, b, cfg.clone(), stats(times), torch));
    }

    eprintln!("[4/6] 64 instances side by side vs 64 single-instance steps (interleaved)");
    let k = 64;
    let mut one = trainer(&seed_config(Variant::EmbRes, 1, 1024))?;
    let mut many = trainer(&seed_config(Variant::EmbRes, k, 1024))?;
    time_steps(&mut one, 10)?;
    for _ in 0..3 {
        many.step(false)?;
    }
    let (mut t1, mut tk, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..12 {
        let t0 = Instant::now();
        for _ in 0..k {
            one.step(false)?;
        }
        let a = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        many.step(false)?;
        let b = t0.elapsed().as_secs_f64();
        t1.push(a);
        tk.push(b);
        ratio.push(b / a);
    }
    let (t1, tk, ratio) = (stats(t1), stats(tk), stats(ratio));
    drop((one, many));
    mm_times.extend(matmul_times(40, true)?);
    mm1_times.extend(matmul_times(20, false)?);
    let mm = stats(mm_times);
    let mm1 = stats(mm1_times);
    let flop = 2.0 * 1024.0 * 1000.0 * 50.0;
    let rate = flop / mm.median;

    eprintln!("[5/6] peak memory (child processes)");
    let mut mems = Vec::new();
    for &k in &args.mem_instances {
        mems.push(run_mem_child(k)?);
    }

    let load_after = load_average();
    eprintln!("[6/6] report");
    let mut r = String::new();
    let w = &mut r;
    writeln!(w, "# Performance: tmcc's CPU training step against PyTorch")?;
    writeln!(w)?;
    writeln!(
        w,
        "Generated by `{command}` on {} ({} CPU{}, {nproc} online; rayon threads: {threads}), {}.",
        cpu_model(),
        nproc,
        if nproc == 1 { "" } else { "s" },
        utc_now()
    )?;
    writeln!(
        w,
        "PyTorch: {}. Load average (1 min) before / after the run: {load_before} / {load_after}: other processes share the 2 vCPUs, so compare ratios measured in the same run, not absolute times across runs.",
        if torch_version.is_empty() { "not run".to_string() } else { torch_version.clone() }
    )?;
    writeln!(w)?;
    writeln!(w, "## Matrix-multiply rate (the limit)")?;
    writeln!(w)?;
    writeln!(
        w,
        "The CPU backend's gemm (faer) on a `1024×1000·1000×50` f32 product, timed in three blocks spread over the run: on {threads} threads (its two halves side by side, as in a training step) median {} ms (p10 {}, p90 {}) = **{:.1} GFLOP/s**; on one thread median {} ms = {:.1} GFLOP/s (2 flops per multiply-add). \"% of limit\" below is a path's multiply-adds per step at the {threads}-thread rate (both loops use {threads} threads) against its median step time.",
        ms(mm.median),
        ms(mm.p10),
        ms(mm.p90),
        rate / 1e9,
        ms(mm1.median),
        flop / mm1.median / 1e9
    )?;
    writeln!(w)?;
    let torch_ran = rows.iter().any(|r| r.4.is_some());
    let torch_n = if torch_ran {
        format!(", {torch_steps} PyTorch steps")
    } else {
        String::new()
    };
    writeln!(
        w,
        "## One training step, same maths (median of {steps} tmcc steps{torch_n})"
    )?;
    writeln!(w)?;
    writeln!(w, "| model | B | path | median ms | p10 ms | p90 ms | PyTorch / tmcc | multiply-adds / step | GFLOP/s | % of limit |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|---|---|")?;
    for (name, b, cfg, tm, torch) in &rows {
        let macs = tmcc_macs(cfg);
        let g = 2.0 * macs / tm.median;
        let speedup = torch.map_or("–".to_string(), |t| {
            format!("**{:.1}**", t.median / tm.median)
        });
        writeln!(
            w,
            "| {name} | {b} | tmcc (sparse, hidden-space gradient) | {} | {} | {} | {speedup} | {:.3e} | {:.1} | {:.0}% |",
            ms(tm.median),
            ms(tm.p10),
            ms(tm.p90),
            macs,
            g / 1e9,
            100.0 * g / rate
        )?;
        match torch {
            Some(t) => {
                let macs = torch_macs(cfg);
                let g = 2.0 * macs / t.median;
                writeln!(
                    w,
                    "| {name} | {b} | PyTorch (dense, `torch_step.py`) | {} | {} | {} | | {:.3e} | {:.1} | {:.0}% |",
                    ms(t.median),
                    ms(t.p10),
                    ms(t.p90),
                    macs,
                    g / 1e9,
                    100.0 * g / rate
                )?;
            }
            None => writeln!(
                w,
                "| {name} | {b} | PyTorch | not run | | | | {:.3e} | | |",
                torch_macs(cfg)
            )?,
        }
    }
    if let Some(msg) = &torch_missing {
        writeln!(w)?;
        writeln!(w, "PyTorch was skipped: {msg}")?;
    }
    writeln!(w)?;
    writeln!(w, "Both loops draw a fresh batch every step (inside the timed region) and take one Adam step (lr 5e-4). tmcc draws each step's batch ahead, on the second thread while the previous step computes.")?;
    writeln!(w)?;
    writeln!(
        w,
        "Multiply-adds per step (`nnz = B·F·p` active inputs; no biases, untied):"
    )?;
    writeln!(w)?;
    writeln!(w, "* tmcc, `emb_res`: `4·F·D·H` (`Aᵀ = W_EᵀW1ᵀ`, `C = W_EᵀW2`, `dW1 = dAᵀᵀW_Eᵀ`, `dW2 = W_E·dC`) + `2·B·H²` (`hᵀh`, `h·M`) + `4·F²·H` (`Ĉ = σ·diag(imp)·C`, `P = R·Ĉ`, `Rᵀ(xᵀh)`, `dC`) + `2·F·H²` (`M = CᵀĈ`, `C·hᵀh`) + `6·nnz·H` (gathers and scatters); `mix`: the same without `4·F·D·H`.")?;
    writeln!(w, "* PyTorch, `emb_res`: forward `2·B·D·F + 2·B·D·H` (`W_E x`, `W1 u`, `W2 h`, `W_Eᵀ s`), backward `B·D·F + 3·B·D·H` (`ds`, `dW2`, `dh`, `dW1`); `mix`: `5·B·F·H + B·F²`.")?;
    writeln!(w)?;
    writeln!(
        w,
        "## Instances side by side (`emb_res`, seed setting, 12 interleaved rounds)"
    )?;
    writeln!(w)?;
    writeln!(w, "| | median ms | p10 ms | p90 ms |")?;
    writeln!(w, "|---|---|---|---|")?;
    writeln!(
        w,
        "| {k} single-instance steps | {} | {} | {} |",
        ms(t1.median),
        ms(t1.p10),
        ms(t1.p90)
    )?;
    writeln!(
        w,
        "| one {k}-instance step | {} | {} | {} |",
        ms(tk.median),
        ms(tk.p10),
        ms(tk.p90)
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "A {k}-instance step costs **{:.2}×** the time of {k} single-instance steps (median of the per-round ratios; p10 {:.2}, p90 {:.2}).",
        ratio.median, ratio.p10, ratio.p90
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "## Peak memory (`emb_res`, seed setting, 3 steps, one child process per K)"
    )?;
    writeln!(w)?;
    let cfg = seed_config(Variant::EmbRes, 1, 1024);
    let (f, h, d, b) = (cfg.n_feat, cfg.n_hidden, cfg.d_emb, cfg.batch_size);
    let p_len = (2 * h * d) as f64;
    let state = 4.0 * p_len * 4.0; // weights, gradients, Adam m and v; f32
    let csr = (b + 1) as f64 * 4.0 + (b as f64 * f as f64 * cfg.p) * 8.0; // sparse batch
    let dense = (b * f) as f64 * 4.0; // one batch's inputs x, B×F f32
    let fixed = (d * f + f * f) as f64 * 4.0; // W_E and the residual table R
    let budget1 = state + fixed + dense;
    let bare1 = state + csr;
    writeln!(w, "Budget per instance: the weights (trained `W1`, `W2`: {} f32; fixed `W_E` (`D×F`) and `R` (`F×F`): {} MiB) + gradients + Adam `m`, `v` of the trained ones ({} MiB for all four) + one batch's inputs `x` as a dense `B×F` f32 array ({} MiB) = **{} MiB**. tmcc holds the batch sparse (CSR, ≈ {} KiB), so the last two columns also show the bare budget: trained weights, gradients, Adam state and the CSR batch only ({} MiB). \"Training\" is the peak minus the child's resident set before the model is built (the binary and its libraries).",
        p_len as usize, mib(fixed), mib(state), mib(dense), mib(budget1), (csr / 1024.0).round(), mib(bare1))?;
    writeln!(w)?;
    writeln!(w, "| K | peak RSS MiB | before model MiB | training MiB | budget MiB | training / budget | bare budget MiB | training / bare budget |")?;
    writeln!(w, "|---|---|---|---|---|---|---|---|")?;
    for m in &mems {
        let kf = m.k as f64;
        let used = (m.peak.saturating_sub(m.baseline)) as f64 * 1024.0;
        writeln!(
            w,
            "| {} | {} | {} | {} | {} | **{:.2}** | {} | {:.2} |",
            m.k,
            mib(m.peak as f64 * 1024.0),
            mib(m.baseline as f64 * 1024.0),
            mib(used),
            mib(kf * budget1),
            used / (kf * budget1),
            mib(kf * bare1),
            used / (kf * bare1)
        )?;
    }
    if let (Some(lo), Some(hi)) = (
        mems.iter().min_by_key(|m| m.k),
        mems.iter().max_by_key(|m| m.k),
    ) {
        if hi.k > lo.k {
            let used = |m: &Mem| m.peak.saturating_sub(m.baseline) as f64 * 1024.0;
            let slope = (used(hi) - used(lo)) / (hi.k - lo.k) as f64;
            let fixed_cost = used(lo) - slope * lo.k as f64;
            writeln!(w)?;
            writeln!(
                w,
                "Each further instance adds {} MiB ({:.2}× its budget, {:.2}× its bare budget; this includes the host copies of `W_E` and `R` kept for checkpoints). The rest, about {} MiB, is paid once per process (a workspace per thread: activations, gathered tables and gradients of one instance's batch; the matrix-multiply scratch; thread stacks).",
                mib(slope),
                slope / budget1,
                slope / bare1,
                mib(fixed_cost.max(0.0))
            )?;
        }
    }
    writeln!(w)?;
    writeln!(w, "## How the step is made fast")?;
    writeln!(w)?;
    writeln!(w, "* **Sparse inputs, feature-space products** (`crates/tmcc-model/src/fast.rs`): `x` has about one active feature per sample, so `W1·W_E·x` is a gather of rows of `Aᵀ = W_EᵀW1ᵀ` (`F×H`), and the `B×D` products of the dense model are never formed; the fixed embedding enters only through the four `F×D×H` products per step.")?;
    writeln!(w, "* **Hidden-space gradient** (L2 loss, identity output: every seed variant): `dout` is linear in the output, so `dh = dout·C` and `dC = doutᵀh` are formed from `hᵀh`, `h·(CᵀĈ)` and sparse gathers of the labels (`2·B·H²` instead of `3·B·F·H` multiply-adds, and no `B×F` output, loss or gradient pass). The loss, when logged, comes from the plain forward pass. Same maths; tested against the plain gradient (f64: 1e-10) and against f64 in f32 (≈1e-6, after training too).")?;
    writeln!(w, "* **Kernels** (`crates/tmcc-kernels/src/cpu/`): faer for the products; gathers, scatters, the loss, ReLU, masks and a one-pass Adam hand-written and compiled for AVX-512, AVX2 and the baseline, picked at run time; no work is handed to another thread below 128 Ki elements; nothing allocates inside a step.")?;
    writeln!(w, "* **Sampler** (`crates/tmcc-model/src/batch.rs`): one 64-bit draw per active cell (gap and value), row ends read from a table of `(1−p)^n`, so a logarithm only for active cells.")?;
    writeln!(w, "* **Instances** (`crates/tmcc-model/src/train.rs`): each instance is its own shard and runs its whole step (batch, gradient, Adam) on one rayon thread, its working set in cache, gradients in the thread's workspace; the next batch is drawn on the other thread meanwhile. A single instance runs its large products (`≥ 2²¹` multiply-adds) as two halves on the two threads; the halves are the same with one thread, so results do not depend on the thread count.")?;
    writeln!(w)?;
    writeln!(w, "Kernel-level numbers: `cargo bench -p tmcc-benches` (criterion: every kernel at the seed's sizes, one training step per variant for 1 and 64 instances).")?;
    print!("{r}");
    if args.write {
        let path = root.join("docs/performance.md");
        let tmp = root.join("docs/.performance.md.tmp");
        std::fs::create_dir_all(root.join("docs"))?;
        std::fs::write(&tmp, &r).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(msg) = torch_missing {
        eprintln!("note: PyTorch comparison skipped; {msg}");
    }
    Ok(())
}
