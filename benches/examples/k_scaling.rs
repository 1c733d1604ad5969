//! Interleaved: one K-instance step vs K single-instance steps (emb_res seed setting).
//! `cargo run -p tmcc-benches --release --example k_scaling -- [K] [rounds] [variant]`
use std::time::Instant;
use tmcc_kernels::cpu::Cpu;
use tmcc_model::config::{Config, Variant};
use tmcc_model::train::Trainer;
use tmcc_model::Model;

fn trainer(v: Variant, k: usize) -> Trainer<f32, Cpu> {
    let cfg = Config {
        variant: v,
        instances: k,
        steps: u64::MAX,
        ..Config::default()
    };
    Trainer::new(Cpu, Model::<f32>::new(&cfg).unwrap()).unwrap()
}

/// CPU time of all threads of this process, seconds (from /proc/self/task/*/schedstat).
fn cpu_time() -> f64 {
    let mut ns = 0u64;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            ns += s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
        }
    }
    ns as f64 * 1e-9
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let k: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let rounds: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let v = a
        .get(3)
        .map(|s| *Variant::ALL.iter().find(|v| v.name() == s).unwrap())
        .unwrap_or(Variant::EmbRes);
    let mut one = trainer(v, 1);
    let mut many = trainer(v, k);
    println!(
        "shard {} ({} shards)",
        many.fast.shard_len(),
        many.fast.shards()
    );
    for _ in 0..3 {
        many.step(false).unwrap();
    }
    for _ in 0..50 {
        one.step(false).unwrap();
    }
    let (mut t1, mut tk) = (Vec::new(), Vec::new());
    let (mut c1, mut ck) = (0.0, 0.0);
    for _ in 0..rounds {
        let c0 = cpu_time();
        let t0 = Instant::now();
        for _ in 0..k {
            one.step(false).unwrap();
        }
        t1.push(t0.elapsed().as_secs_f64());
        let c = cpu_time();
        c1 += c - c0;
        let t0 = Instant::now();
        many.step(false).unwrap();
        tk.push(t0.elapsed().as_secs_f64());
        ck += cpu_time() - c;
    }
    println!("CPU time (all threads): {k} single steps {:.3} ms/instance, K-step {:.3} ms/instance, ratio {:.3}",
        c1 * 1e3 / (rounds * k) as f64, ck * 1e3 / (rounds * k) as f64, ck / c1);
    let ratios: Vec<f64> = {
        let mut r: Vec<f64> = tk.iter().zip(&t1).map(|(a, b)| a / b).collect();
        r.sort_by(f64::total_cmp);
        r
    };
    t1.sort_by(f64::total_cmp);
    tk.sort_by(f64::total_cmp);
    let med = |v: &Vec<f64>| v[v.len() / 2];
    println!("{} x1 step: median {:.3} ms/instance; K={k} step: median {:.3} ms ({:.3} ms/instance); ratio (K-step / K single steps) median {:.3}, min {:.3}",
        v.name(), med(&t1) * 1e3 / k as f64, med(&tk) * 1e3, med(&tk) * 1e3 / k as f64, med(&ratios), ratios[0]);
}
