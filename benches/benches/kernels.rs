//! Each CPU kernel at the seed's sizes (`F=100, H=50, D=1000, B=1024, p=0.01`, one
//! instance): the matrix products in every orientation the training step uses, the sparse
//! gather and scatter, the loss, the element-wise passes, Adam, and the batch sampler.
//!
//! `cargo bench -p tmcc-benches --bench kernels` (short runs: 10 samples, ~1 s each).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tmcc_benches::setting::{product, values};
use tmcc_kernels::cpu::{gather, scatter, BatchPath, Cpu};
use tmcc_kernels::{AdamSpec, Backend, Csr, LossKind, LossSpec, SparseSpec, View};
use tmcc_model::batch::{HostBatch, Sampler};
use tmcc_model::init::{rng, Stream};

const B: usize = 1024;
const F: usize = 100;
const H: usize = 50;
const D: usize = 1000;

fn seed_batch() -> Csr<Vec<u32>, Vec<f32>> {
    batch(B, 0.01)
}

/// One instance's `rows`-row batch at density `p`.
fn batch(rows: usize, p: f64) -> Csr<Vec<u32>, Vec<f32>> {
    let mut s = Sampler::<f32>::new(vec![rng(0, Stream::Data)], vec![p]);
    let mut hb = HostBatch::default();
    s.sample(rows, F, &mut hb);
    Csr {
        instances: 1,
        rows_per_instance: rows,
        cols: F,
        nnz: hb.nnz(),
        row_ptr: hb.row_ptr,
        col: hb.col,
        val: hb.val,
    }
}

fn gemms(c: &mut Criterion) {
    // (name, m, n, k, A trans, B trans): C = op(A)·op(B), op(A) m×k, op(B) k×n.
    let shapes: [(&str, usize, usize, usize, bool, bool); 10] = [
        ("fwd A^T = W_E^T W1^T (F×D·D×H, t t)", F, H, D, true, true),
        ("fwd C = W_E^T W2 (F×D·D×H, t n)", F, H, D, true, false),
        ("bwd dW1 = dA W_E^T (H×F·F×D, t t)", H, D, F, true, true),
        ("bwd dW2 = W_E dC (D×F·F×H, n n)", D, H, F, false, false),
        ("hidden G = h^T h (H×B·B×H, t n)", H, H, B, true, false),
        ("hidden dh = h M (B×H·H×H, n n)", B, H, H, false, false),
        ("plain z = h C^T (B×H·H×F, n t)", B, F, H, false, true),
        ("plain dC = dout^T h (F×B·B×H, t n)", F, H, B, true, false),
        ("plain dh = dout C (B×F·F×H, n n)", B, H, F, false, false),
        ("small P = R C_hat (F×F·F×H, n n)", F, H, F, false, false),
    ];
    let mut g = c.benchmark_group("gemm");
    for (name, m, n, k, ta, tb) in shapes {
        let a = values(m * k, 1);
        let bm = values(k * n, 2);
        let mut out = vec![0f32; m * n];
        let gm = product(m, n, k, ta, tb);
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(name, |bch| {
            bch.iter(|| Cpu.gemm(black_box(&gm), &a, &bm, &mut out).unwrap())
        });
    }
    g.finish();
}

fn sparse_and_elementwise(c: &mut Criterion) {
    let x = seed_batch();
    let p = View::packed;
    let spec = |w: usize, beta: f32| SparseSpec {
        width: w,
        y: p(B * w),
        t: p(F * w),
        t_row_stride: w,
        t_col_stride: 1,
        beta,
    };
    let table_h = values(F * H, 3);
    let table_f = values(F * F, 4);
    let mut y_h = values(B * H, 5);
    let mut y_f = values(B * F, 6);
    let mut g = c.benchmark_group("sparse");
    g.throughput(Throughput::Elements(x.nnz as u64));
    g.bench_function("gather x·A^T (width H, beta 0)", |b| {
        b.iter(|| {
            Cpu.sparse_gather(&spec(H, 0.0), &x, &table_h, &mut y_h)
                .unwrap()
        })
    });
    g.bench_function("gather z += x·R (width F, beta 1)", |b| {
        b.iter(|| {
            Cpu.sparse_gather(&spec(F, 1.0), &x, &table_f, &mut y_f)
                .unwrap()
        })
    });
    let mut t = vec![0f32; F * H];
    let dpre = values(B * H, 7);
    g.bench_function("scatter x^T·dpre (width H)", |b| {
        b.iter(|| {
            Cpu.sparse_scatter(&spec(H, 0.0), &x, &dpre, &mut t)
                .unwrap()
        })
    });
    let out = values(B * F, 8);
    let imp = vec![1f32; F];
    let mut rl = vec![0f32; B];
    let mut dout = vec![0f32; B * F];
    let ls = LossSpec {
        kind: LossKind::L2,
        scale: 1.0 / (B * F) as f32,
    };
    // Sparse labels on the cells of the batch (their values do not change the cost).
    let labels = &x;
    g.throughput(Throughput::Elements((B * F) as u64));
    g.bench_function("loss L2 + dout (B×F)", |b| {
        b.iter(|| {
            Cpu.loss(&ls, &out, labels, &imp, &mut rl, Some(&mut dout))
                .unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("elementwise");
    let pre = values(B * H, 9);
    let mut h = vec![0f32; B * H];
    g.throughput(Throughput::Elements((B * H) as u64));
    g.bench_function("relu (B×H)", |b| {
        b.iter(|| Cpu.relu(&pre, &mut h).unwrap())
    });
    g.bench_function("relu_mask (B×H)", |b| {
        b.iter(|| Cpu.relu_mask(&pre, &mut h).unwrap())
    });
    let bias = values(H, 10);
    g.bench_function("add_bias (B×H)", |b| {
        b.iter(|| Cpu.add_bias(B, H, &bias, p(H), &mut h).unwrap())
    });
    let mut sums = vec![0f32; H];
    g.bench_function("col_sum (B×H)", |b| {
        b.iter(|| Cpu.col_sum(B, H, &pre, &mut sums, p(H)).unwrap())
    });
    let n = 2 * H * D;
    let mut params = values(n, 11);
    let grads = values(n, 12);
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let adam = AdamSpec {
        lr: 5e-4,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        bias_correction1: 0.1,
        bias_correction2: 0.001,
    };
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("adam (2·H·D params)", |b| {
        b.iter(|| {
            Cpu.adam(&adam, &mut params, &grads, &mut m, &mut v)
                .unwrap()
        })
    });
    g.bench_function("fill (2·H·D)", |b| {
        b.iter(|| Cpu.fill(&mut m, black_box(0.0)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("sampler");
    let mut s = Sampler::<f32>::new(vec![rng(0, Stream::Data)], vec![0.01]);
    let mut hb = HostBatch::default();
    g.throughput(Throughput::Elements(B as u64));
    g.bench_function("sample B=1024 rows, F=100, p=0.01", |b| {
        b.iter(|| s.sample(B, F, &mut hb))
    });
    g.finish();
}

/// The gather and scatter of the follow-up paper's batch (`B = 2048`, `F = 100`) by both
/// paths across the density of active cells: where the dense products overtake the row
/// walk (`tmcc_kernels::cpu::DENSE_MIN_DENSITY`). Filter with `-- density`.
fn density(c: &mut Criterion) {
    const ROWS: usize = 2048;
    let spec = |w: usize| SparseSpec {
        width: w,
        y: View::packed(ROWS * w),
        t: View::packed(F * w),
        t_row_stride: w,
        t_col_stride: 1,
        beta: 0.0,
    };
    let mut g = c.benchmark_group("density");
    for p in [0.03, 0.05, 0.08, 0.1, 0.15, 0.3, 1.0] {
        let x = batch(ROWS, p);
        for w in [H, F] {
            let table = values(F * w, 3);
            let mut y = values(ROWS * w, 5);
            let mut t = vec![0f32; F * w];
            for path in [BatchPath::Walk, BatchPath::Dense] {
                let name = |op: &str| format!("{op} w={w} p={p} {path:?}");
                g.bench_function(name("gather"), |b| {
                    b.iter(|| gather(path, &spec(w), &x, &table, &mut y).unwrap())
                });
                g.bench_function(name("scatter"), |b| {
                    b.iter(|| scatter(path, &spec(w), &x, &y, &mut t).unwrap())
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800));
    targets = gemms, sparse_and_elementwise, density
}
criterion_main!(kernels);
