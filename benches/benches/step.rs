//! One full training step (`Trainer::step`: fresh sparse batch, gradient, Adam) per
//! variant at the seed setting (`F=100, H=50, D=1000, B=1024, p=0.01`), for the instance
//! counts of `tmcc_benches::setting::CRITERION_STEP_INSTANCES` (1 and 64).
//!
//! `cargo bench -p tmcc-benches --bench step` (short runs: 10 samples).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tmcc_benches::setting::{seed_setting, trainer, CRITERION_STEP_INSTANCES};
use tmcc_model::config::Variant;

fn steps(c: &mut Criterion) {
    for k in CRITERION_STEP_INSTANCES {
        let mut g = c.benchmark_group(format!("step K={k}"));
        g.throughput(Throughput::Elements(k as u64));
        if k > 1 {
            g.measurement_time(Duration::from_secs(3));
        }
        for variant in Variant::ALL {
            let mut t = trainer(&seed_setting(variant, k)).unwrap();
            t.step(false).unwrap();
            g.bench_function(variant.name(), |b| b.iter(|| t.step(false).unwrap()));
        }
        g.finish();
    }
}

criterion_group! {
    name = step;
    config = Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = steps
}
criterion_main!(step);
