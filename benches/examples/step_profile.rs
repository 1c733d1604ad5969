//! Quick timing of training steps (median, p10, p90): `cargo run -p tmcc-benches --release
//! --example step_profile -- [variant] [instances] [batch] [steps]`.

use std::time::Instant;

use tmcc_kernels::cpu::Cpu;
use tmcc_model::config::{Config, Variant};
use tmcc_model::train::Trainer;
use tmcc_model::Model;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant = args.get(1).map(|s| s.as_str()).unwrap_or("emb_res");
    let k: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let b: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let steps: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(300);
    let variant = Variant::ALL
        .into_iter()
        .find(|v| v.name() == variant)
        .expect("variant");
    let cfg = Config {
        variant,
        instances: k,
        batch_size: b,
        steps: u64::MAX,
        ..Config::default()
    };
    let mut t = Trainer::new(Cpu, Model::<f32>::new(&cfg).unwrap()).unwrap();
    for _ in 0..20 {
        t.step(false).unwrap();
    }
    let mut times = Vec::new();
    for _ in 0..steps {
        let t0 = Instant::now();
        t.step(false).unwrap();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    // A checksum of the weights: equal across SIMD levels (TMCC_NO_SIMD=1) and thread
    // counts (RAYON_NUM_THREADS), since neither changes the rounding.
    let sum: u64 = t
        .fast
        .read_params()
        .unwrap()
        .iter()
        .map(|w| w.to_bits() as u64)
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b));
    println!("weights checksum {sum:016x}");
    if std::env::var_os("STEP_TRACE").is_some() {
        let line: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!("{}", line.join(" "));
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "{} K={k} B={b}: median {:.3} ms  p10 {:.3}  p90 {:.3}",
        variant.name(),
        q(0.5),
        q(0.1),
        q(0.9)
    );
}
