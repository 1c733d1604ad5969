//! Times each gemm shape of the emb_res step on the CPU backend.
use std::time::Instant;

use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::{Backend, Gemm, Operand, View};

fn time<F: FnMut()>(name: &str, macs: f64, mut f: F) {
    for _ in 0..20 {
        f();
    }
    let mut ts = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        f();
        ts.push(t0.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    let med = ts[ts.len() / 2];
    let min = ts[0];
    println!("{name:40} med {:8.1} us  min {:8.1} us  {:6.1} GFLOP/s (at min)", med * 1e6, min * 1e6, 2.0 * macs / min / 1e9);
}

fn main() {
    let (b, f, h, d) = (1024usize, 100usize, 50usize, 1000usize);
    let bk = Cpu;
    let rnd = |n: usize| -> Vec<f32> { (0..n).map(|i| ((i * 7919 % 1000) as f32) / 1000.0 - 0.5).collect() };
    let e = rnd(d * f);
    let w1 = rnd(h * d);
    let w2 = rnd(d * h);
    let hh = rnd(b * h);
    let dout = rnd(b * f);
    let fh = rnd(f * h);
    let mut out_fh = vec![0f32; f * h];
    let mut out_bf = vec![0f32; b * f];
    let mut out_bh = vec![0f32; b * h];
    let mut out_hd = vec![0f32; h * d];
    let p = View::packed;
    let g = |m, n, k, a, bb, c| Gemm { batch: 1, m, n, k, alpha: 1.0f32, beta: 0.0, a, b: bb, c };
    let fdh = (f * d * h) as f64;
    let bfh = (b * f * h) as f64;
    time("A^T = E^T W1^T (F×D·D×H, both T)", fdh, || bk.gemm(&g(f, h, d, Operand::t(p(d*f)), Operand::t(p(h*d)), p(f*h)), &e, &w1, &mut out_fh).unwrap());
    time("C = E^T W2 (F×D·D×H, A T)", fdh, || bk.gemm(&g(f, h, d, Operand::t(p(d*f)), Operand::n(p(d*h)), p(f*h)), &e, &w2, &mut out_fh).unwrap());
    time("z = h C^T (B×H·H×F)", bfh, || bk.gemm(&g(b, f, h, Operand::n(p(b*h)), Operand::t(p(f*h)), p(b*f)), &hh, &fh, &mut out_bf).unwrap());
    time("dC = dout^T h (F×B·B×H)", bfh, || bk.gemm(&g(f, h, b, Operand::t(p(b*f)), Operand::n(p(b*h)), p(f*h)), &dout, &hh, &mut out_fh).unwrap());
    time("dh = dout C (B×F·F×H)", bfh, || bk.gemm(&g(b, h, f, Operand::n(p(b*f)), Operand::n(p(f*h)), p(b*h)), &dout, &fh, &mut out_bh).unwrap());
    time("dW1 = dA^T^T E^T (H×F·F×D)", fdh, || bk.gemm(&g(h, d, f, Operand::t(p(f*h)), Operand::t(p(d*f)), p(h*d)), &fh, &e, &mut out_hd).unwrap());
    time("dW2 = E dC (D×F·F×H)", fdh, || bk.gemm(&g(d, h, f, Operand::n(p(d*f)), Operand::n(p(f*h)), p(d*h)), &e, &fh, &mut out_hd).unwrap());
    let x1 = rnd(1024 * 1000);
    let x2 = rnd(1000 * 50);
    let mut y = vec![0f32; 1024 * 50];
    {
        use tmcc_kernels::{AdamSpec, Csr, LossKind, LossSpec, SparseSpec};
        use tmcc_model::batch::{HostBatch, Sampler};
        use tmcc_model::init::{rng, Stream};
        let mut s = Sampler::<f32>::new(vec![rng(0, Stream::Data)], vec![0.01]);
        let mut hb = HostBatch::default();
        time("sample B=1024", 0.0, || s.sample(b, f, &mut hb));
        let x = Csr { instances: 1, rows_per_instance: b, cols: f, row_ptr: hb.row_ptr.clone(), col: hb.col.clone(), val: hb.val.clone(), nnz: hb.nnz() };
        let sp = |w: usize, tb: usize, beta: f32| SparseSpec { width: w, y: p(b * w), t: p(tb), t_row_stride: w, t_col_stride: 1, beta };
        time("gather pre (H)", 0.0, || bk.sparse_gather(&sp(h, f*h, 0.0), &x, &fh, &mut out_bh).unwrap());
        let r = rnd(f * f);
        time("gather resid (F, beta 1)", 0.0, || bk.sparse_gather(&sp(f, f*f, 1.0), &x, &r, &mut out_bf).unwrap());
        let bias = rnd(f);
        time("add_bias B×F", 0.0, || bk.add_bias(b, f, &bias, p(f), &mut out_bf).unwrap());
        let mut hh2 = hh.clone();
        time("relu B×H", 0.0, || bk.relu(&hh, &mut hh2).unwrap());
        time("relu_mask B×H", 0.0, || bk.relu_mask(&hh, &mut hh2).unwrap());
        let mut cs = vec![0f32; h];
        time("col_sum B×H", 0.0, || bk.col_sum(b, h, &hh, &mut cs, p(h)).unwrap());
        let mut tab = vec![0f32; f * h];
        time("scatter H", 0.0, || bk.sparse_scatter(&sp(h, f*h, 0.0), &x, &hh, &mut tab).unwrap());
        let imp = vec![1f32; f];
        let mut rl = vec![0f32; b];
        let mut dd = vec![0f32; b * f];
        let ls = LossSpec { kind: LossKind::L2, res_factor: 1.0, scale: 1e-5 };
        time("loss+grad B×F", 0.0, || bk.loss(&ls, &out_bf, &x, &imp, &mut rl, Some(&mut dd)).unwrap());
        let mut pp = rnd(2 * h * d);
        let gg = rnd(2 * h * d);
        let mut mm = vec![0f32; 2 * h * d];
        let mut vv = vec![0f32; 2 * h * d];
        let a = AdamSpec { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, bias_correction1: 0.1, bias_correction2: 0.001 };
        time("adam 100k", 0.0, || bk.adam(&a, &mut pp, &gg, &mut mm, &mut vv).unwrap());
        time("fill 100k", 0.0, || bk.fill(&mut mm, 0.0).unwrap());
    }
    time("ref 1024×1000·1000×50", 1024.0 * 1000.0 * 50.0, || bk.gemm(&g(1024, 50, 1000, Operand::n(p(1024*1000)), Operand::n(p(1000*50)), p(1024*50)), &x1, &x2, &mut y).unwrap());
}

#[allow(dead_code)]
pub fn other_ops() {}
