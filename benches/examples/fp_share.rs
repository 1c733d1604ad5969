//! Do the two vCPUs share FP units? One product alone vs two at once on two threads.
use std::time::Instant;
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{Backend, Gemm, Operand, View};

fn run(n: usize) -> f64 {
    let (m, k, nn) = (1024usize, 1000usize, 50usize);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * nn).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0f32; m * nn];
    let g = Gemm {
        batch: 1,
        m,
        n: nn,
        k,
        alpha: 1.0f32,
        beta: 0.0,
        a: Operand::n(View::packed(m * k)),
        b: Operand::n(View::packed(k * nn)),
        c: View::packed(m * nn),
    };
    let t0 = Instant::now();
    for _ in 0..n {
        Cpu.gemm(&g, &a, &b, &mut c).unwrap();
    }
    t0.elapsed().as_secs_f64() / n as f64
}

fn main() {
    for _ in 0..3 {
        let one = run(200);
        let two = std::thread::scope(|s| {
            let h1 = s.spawn(|| run(200));
            let h2 = s.spawn(|| run(200));
            (h1.join().unwrap() + h2.join().unwrap()) / 2.0
        });
        let flop = 2.0 * 1024.0 * 1000.0 * 50.0;
        println!(
            "alone {:.1} GFLOP/s; two at once: each {:.1} GFLOP/s (sum {:.1})",
            flop / one / 1e9,
            flop / two / 1e9,
            2.0 * flop / two / 1e9
        );
    }
}
