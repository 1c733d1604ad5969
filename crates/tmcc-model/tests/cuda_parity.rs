//! The whole model on the CUDA backend against the CPU backend: forward (outputs, per-row
//! losses, `∂L/∂out`), backward (gradients), one Adam step (parameters, moments) and 100
//! training steps through `Trainer` (logged losses, final parameters), for `emb_res`,
//! `mix` and `mlp` with both biases.
//!
//! One body ([`parity`]) per case, instantiated twice:
//! * `cuda_vs_cpu_*`: `Cuda` against `Cpu`, small shapes and the seed setting
//!   (`F=100, H=50, D=1000, B=1024`, `K=2`); skipped with a visible
//!   `skipped: no CUDA device (<reason>)` on stderr when no device is present;
//! * `naive_vs_cpu_*`: the tests' textbook backend (sums in `f64`, a different rounding
//!   order, as the GPU has) against `Cpu`, small shapes only: runs everywhere, and shows
//!   that the tolerances below leave room for a legitimate change of summation order.
//!
//! Tolerances, element `i` passing when `|got − ref| ≤ atol + rtol·|ref|`:
//!
//! | quantity | atol | rtol |
//! |---|---|---|
//! | outputs | 1e-5 | 1e-4 |
//! | per-instance batch losses, per-row losses | 1e-5·mean | 1e-4 |
//! | `∂L/∂out`, gradients, Adam moments (each divided by its tensor's largest `|ref|`) | 1e-4 | 1e-3 |
//! | parameters after 1 and after 100 Adam steps | 1e-4 | 1e-3 |
//!
//! plus, after 100 steps, a norm-wise relative difference `‖got − ref‖/‖ref‖ ≤ 1e-4` of
//! the parameters. The worst element of every comparison is printed.

use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::Backend;
use tmcc_model::batch::{HostBatch, Sampler};
use tmcc_model::config::{Config, Variant};
use tmcc_model::fast::FastModel;
use tmcc_model::init::{rng, Stream};
use tmcc_model::optim::adam_spec;
use tmcc_model::train::Trainer;
use tmcc_model::{Model, Param};
use tmcc_testkit::{assert_close, naive, Tol};

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()))
}

fn rel_norm(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (g as f64 - w as f64).powi(2);
        den += (w as f64).powi(2);
    }
    (num / den.max(1e-30)).sqrt()
}

const OUT: Tol = Tol {
    atol: 1e-5,
    rtol: 1e-4,
};
const SCALED: Tol = Tol {
    atol: 1e-4,
    rtol: 1e-3,
};
const PARAMS: Tol = Tol {
    atol: 1e-4,
    rtol: 1e-3,
};

/// Non-zero biases, so that their paths are exercised.
fn perturb_biases(m: &mut Model<f32>) {
    for k in 0..m.instances() {
        for name in [Param::B1, Param::B2] {
            if let Some(s) = m.layout.get(name).cloned() {
                let base = k * m.layout.len + s.offset;
                for i in 0..s.len {
                    m.params[base + i] = 0.1 * ((i * 7 + k * 3) % 5) as f32 - 0.2;
                }
            }
        }
    }
}

/// The first training batch of `cfg`.
fn first_batch(cfg: &Config) -> HostBatch<f32> {
    let rngs = (0..cfg.instances)
        .map(|k| rng(cfg.instance_seed(k), Stream::Data))
        .collect();
    let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
    let mut s = Sampler::<f32>::new(rngs, ps);
    let mut b = HostBatch::default();
    s.sample(cfg.batch_size, cfg.n_feat, &mut b);
    b
}

/// Forward, backward and one Adam step through `FastModel`.
struct OneStep {
    out: Vec<f32>,
    row_loss: Vec<f32>,
    dout: Vec<f32>,
    grads: Vec<f32>,
    params: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
}

fn one_step<B: Backend<f32>>(bk: B, model: &Model<f32>) -> OneStep {
    let cfg = &model.cfg;
    let (b, f) = (cfg.batch_size, cfg.n_feat);
    let mut fast = FastModel::new(bk, model).unwrap();
    let mut ws = fast.workspace(b).unwrap();
    fast.load_batch(&mut ws, &first_batch(cfg)).unwrap();
    fast.forward(&mut ws, 1.0 / (b * f) as f32, true).unwrap();
    fast.backward(&mut ws).unwrap();
    let out = fast.bk().read(fast.output(&ws)).unwrap();
    let row_loss = fast.bk().read(&ws.row_loss).unwrap();
    let dout = fast.bk().read(&ws.dout).unwrap();
    let grads = fast.read_grads().unwrap();
    fast.adam_step(&adam_spec::<f32>(cfg, 0)).unwrap();
    let params = fast.read_params().unwrap();
    let (m, v) = fast.read_moments().unwrap();
    OneStep {
        out,
        row_loss,
        dout,
        grads,
        params,
        m,
        v,
    }
}

/// Per-instance losses at the logged steps and the final parameters after `steps` steps.
fn train<B: Backend<f32>>(bk: B, model: Model<f32>, steps: u64) -> (Vec<Vec<f64>>, Vec<f32>) {
    let mut t = Trainer::new(bk, model).unwrap();
    let log = t.run(Some(steps), |_, _| Ok(true)).unwrap();
    let losses = log.into_iter().map(|p| p.loss).collect();
    (losses, t.read_params().unwrap())
}

/// The test body: `bk` must agree with `reference` on `cfg`.
fn parity<B: Backend<f32> + Clone, R: Backend<f32> + Clone>(
    name: &str,
    bk: &B,
    reference: &R,
    cfg: &Config,
    steps: u64,
) {
    let mut model = Model::<f32>::new(cfg).unwrap();
    perturb_biases(&mut model);
    let got = one_step(bk.clone(), &model);
    let want = one_step(reference.clone(), &model);
    let scale = 1.0 / (cfg.batch_size * cfg.n_feat) as f64;
    assert_close(&format!("{name}: outputs"), &got.out, &want.out, 1.0, OUT);
    let mean_row =
        want.row_loss.iter().map(|&l| l as f64).sum::<f64>() / want.row_loss.len() as f64;
    let loss_tol = Tol {
        atol: 1e-5,
        rtol: 1e-4,
    };
    assert_close(
        &format!("{name}: row losses"),
        &got.row_loss,
        &want.row_loss,
        mean_row,
        loss_tol,
    );
    assert_close(
        &format!("{name}: dL/dout"),
        &got.dout,
        &want.dout,
        max_abs(&want.dout).max(scale),
        SCALED,
    );
    assert_close(
        &format!("{name}: gradients"),
        &got.grads,
        &want.grads,
        max_abs(&want.grads),
        SCALED,
    );
    assert_close(
        &format!("{name}: Adam m"),
        &got.m,
        &want.m,
        max_abs(&want.m),
        SCALED,
    );
    assert_close(
        &format!("{name}: Adam v"),
        &got.v,
        &want.v,
        max_abs(&want.v),
        SCALED,
    );
    assert_close(
        &format!("{name}: params after 1 step"),
        &got.params,
        &want.params,
        1.0,
        PARAMS,
    );

    let (lg, pg) = train(bk.clone(), model.clone(), steps);
    let (lr, pr) = train(reference.clone(), model, steps);
    assert_eq!(lg.len(), lr.len(), "{name}: logged steps");
    for (t, (a, b)) in lg.iter().zip(&lr).enumerate() {
        let a: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let b: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let mean = b.iter().map(|&x| x as f64).sum::<f64>() / b.len() as f64;
        assert_close(
            &format!("{name}: batch losses at log point {t}"),
            &a,
            &b,
            mean,
            loss_tol,
        );
    }
    assert_close(
        &format!("{name}: params after {steps} steps"),
        &pg,
        &pr,
        1.0,
        PARAMS,
    );
    let rel = rel_norm(&pg, &pr);
    eprintln!("{name}: params after {steps} steps: norm-wise relative difference {rel:.3e}");
    assert!(
        rel <= 1e-4,
        "{name}: params after {steps} steps differ norm-wise by {rel:e}"
    );
}

/// `emb_res`, `mix` and `mlp` with both biases, small.
fn small_cases() -> Vec<(&'static str, Config)> {
    let base = Config {
        n_feat: 20,
        n_hidden: 8,
        d_emb: 60,
        p: 0.05,
        batch_size: 64,
        steps: 100,
        instances: 3,
        lr: 3e-3,
        log_every: 25,
        ..Config::default()
    };
    vec![
        (
            "emb_res small",
            Config {
                variant: Variant::EmbRes,
                ..base.clone()
            },
        ),
        (
            "mix small",
            Config {
                variant: Variant::Mix,
                sigma: 0.05,
                ..base.clone()
            },
        ),
        (
            "mlp+biases small",
            Config {
                variant: Variant::Mlp,
                bias1: true,
                bias2: true,
                ..base
            },
        ),
    ]
}

/// The same three at the seed setting (`F=100, H=50, D=1000, B=1024, p=0.01`), `K = 2`.
fn seed_cases() -> Vec<(&'static str, Config)> {
    let base = Config {
        instances: 2,
        steps: 100,
        log_every: 25,
        ..Config::default()
    };
    vec![
        (
            "emb_res seed",
            Config {
                variant: Variant::EmbRes,
                ..base.clone()
            },
        ),
        (
            "mix seed",
            Config {
                variant: Variant::Mix,
                ..base.clone()
            },
        ),
        (
            "mlp+biases seed",
            Config {
                variant: Variant::Mlp,
                bias1: true,
                bias2: true,
                ..base
            },
        ),
    ]
}

#[test]
fn naive_vs_cpu_small() {
    for (name, cfg) in small_cases() {
        parity(
            &format!("naive vs cpu, {name}"),
            &naive::Naive,
            &Cpu,
            &cfg,
            cfg.steps,
        );
    }
}

fn cuda_or_skip(test: &str) -> Option<tmcc_kernels::cuda::Cuda> {
    use std::io::Write;
    match tmcc_kernels::cuda_available() {
        Ok(()) => Some(tmcc_kernels::cuda::Cuda::new(0).expect("probed")),
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "{test}: skipped: no CUDA device ({why})");
            None
        }
    }
}

#[test]
fn cuda_vs_cpu_small() {
    if let Some(bk) = cuda_or_skip("cuda_vs_cpu_small") {
        eprintln!("device: {}", bk.describe());
        for (name, cfg) in small_cases() {
            parity(&format!("cuda vs cpu, {name}"), &bk, &Cpu, &cfg, cfg.steps);
        }
    }
}

#[test]
fn cuda_vs_cpu_seed_setting() {
    if let Some(bk) = cuda_or_skip("cuda_vs_cpu_seed_setting") {
        for (name, cfg) in seed_cases() {
            parity(&format!("cuda vs cpu, {name}"), &bk, &Cpu, &cfg, cfg.steps);
        }
    }
}
