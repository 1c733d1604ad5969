//! The CPU timings of `tmcc-bench`, each with a monotonic clock around one operation:
//!
//! * the **matrix-multiply rate**: the CPU backend's gemm on one `M×K·K×N` f32 product
//!   ([`MATMUL`]), in blocks spread over the run so that the rate and the steps see the
//!   same load; each block times it from a rayon worker (its two halves on two threads,
//!   as inside a training step) and from the main thread (one thread);
//! * **training steps**: `Trainer::step` (fresh sparse batch, gradient, Adam), each step
//!   timed on its own after untimed warm-up steps;
//! * **instances side by side**: one `K`-instance step against `K` single-instance steps,
//!   interleaved round by round so that both see the same load, with the ratio taken per
//!   round.

use std::time::Instant;

use anyhow::Result;
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::Backend;
use tmcc_model::config::Variant;
use tmcc_model::train::Trainer;

use crate::setting::{product, seed_setting, trainer, values};
use crate::stats::Stats;

/// The timed product `(M, K, N)`: `1024×1000·1000×50`, the shape of `W1·u` at the seed
/// setting (`B×D·D×H`).
pub const MATMUL: (usize, usize, usize) = (1024, 1000, 50);
/// Timed products per block: from a rayon worker (two threads), from the main thread.
pub const MATMUL_REPS: (usize, usize) = (40, 20);
/// Untimed products before each timed series.
const MATMUL_WARMUP: usize = 5;
/// Untimed steps before each timed series of [`time_steps`].
pub const WARMUP_STEPS: usize = 20;

/// Multiply-adds of one [`MATMUL`] product.
pub fn matmul_macs() -> f64 {
    let (m, k, n) = MATMUL;
    (m * k * n) as f64
}

/// Seconds per [`MATMUL`] product, `reps` times, called from the main thread (one
/// thread) or from a rayon worker (its two halves on two threads).
fn matmul_times(reps: usize, two_threads: bool) -> Result<Vec<f64>> {
    let (m, k, n) = MATMUL;
    let a = values(m * k, 0);
    let b = values(k * n, 1);
    let mut c = vec![0f32; m * n];
    let g = product(m, n, k, false, false);
    let mut time = || -> Result<Vec<f64>> {
        for _ in 0..MATMUL_WARMUP {
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

/// The matrix-multiply rate, collected in blocks.
#[derive(Debug, Default)]
pub struct MatmulTimer {
    two: Vec<f64>,
    one: Vec<f64>,
    blocks: usize,
}

/// The matrix-multiply rate of a run.
#[derive(Clone, Copy, Debug)]
pub struct MatmulRate {
    /// Seconds per product from a rayon worker.
    pub two: Stats,
    /// Seconds per product on one thread.
    pub one: Stats,
    /// Blocks the times were pooled from.
    pub blocks: usize,
}

impl MatmulRate {
    /// The limit: flops per second of the two-thread median (2 flops per multiply-add).
    pub fn flops(&self) -> f64 {
        2.0 * matmul_macs() / self.two.median
    }
    /// Flops per second of the one-thread median.
    pub fn flops_one(&self) -> f64 {
        2.0 * matmul_macs() / self.one.median
    }
}

impl MatmulTimer {
    /// Times one block: [`MATMUL_REPS`] products on two threads, then on one.
    pub fn block(&mut self) -> Result<()> {
        self.two.extend(matmul_times(MATMUL_REPS.0, true)?);
        self.one.extend(matmul_times(MATMUL_REPS.1, false)?);
        self.blocks += 1;
        Ok(())
    }
    pub fn finish(self) -> MatmulRate {
        MatmulRate {
            two: Stats::of(self.two),
            one: Stats::of(self.one),
            blocks: self.blocks,
        }
    }
}

/// `steps` timed `Trainer::step`s (seconds each) after [`WARMUP_STEPS`] untimed ones.
pub fn time_steps(t: &mut Trainer<f32, Cpu>, steps: usize) -> Result<Vec<f64>> {
    for _ in 0..WARMUP_STEPS {
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

/// One `k`-instance step against `k` single-instance steps.
#[derive(Clone, Copy, Debug)]
pub struct SideBySide {
    pub variant: Variant,
    pub k: usize,
    pub rounds: usize,
    /// Seconds of `k` single-instance steps.
    pub singles: Stats,
    /// Seconds of one `k`-instance step.
    pub many: Stats,
    /// Per-round ratio `many / singles`.
    pub ratio: Stats,
}

impl SideBySide {
    /// The measurement of `tmcc-bench`: 64 `emb_res` instances, 12 rounds.
    pub const VARIANT: Variant = Variant::EmbRes;
    pub const K: usize = 64;
    pub const ROUNDS: usize = 12;

    /// At the seed setting: warms both trainers up (10 timed single steps after the usual
    /// warm-up, 3 steps of the `k`-instance trainer), then `rounds` rounds of `k` single
    /// steps and one `k`-instance step.
    pub fn measure(variant: Variant, k: usize, rounds: usize) -> Result<Self> {
        let mut one = trainer(&seed_setting(variant, 1))?;
        let mut many = trainer(&seed_setting(variant, k))?;
        time_steps(&mut one, 10)?;
        for _ in 0..3 {
            many.step(false)?;
        }
        let (mut t1, mut tk, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
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
        Ok(SideBySide {
            variant,
            k,
            rounds,
            singles: Stats::of(t1),
            many: Stats::of(tk),
            ratio: Stats::of(ratio),
        })
    }
}
