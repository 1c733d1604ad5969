//! Backend parity, one test body per operation, generic over the backend under test `B`
//! and a reference backend `R`:
//!
//! * `cpu_vs_naive::*` — the CPU backend against [`naive::Naive`] (textbook loops, sums in
//!   `f64`), always;
//! * `cuda_vs_cpu::*` — the CUDA backend against the CPU backend, when built with the `cuda`
//!   feature and a device is present; otherwise each prints
//!   `skipped: no CUDA device (<reason>)` to stderr and passes;
//! * `emu_vs_cpu::*` and `emu_asan_vs_cpu::*` — the CUDA kernels, built by the host C++
//!   compiler against `emu/cuda_emu.h` (once plain, once under AddressSanitizer) and launched
//!   as the CUDA backend launches them ([`emu_device`]), against the CPU backend, always
//!   (no GPU needed; without a compiler they fail unless `TMCC_EMU_SKIP=1`).
//!
//! All of them run the same case list (`instantiate!` below), with the same tolerances; the
//! emulated device runs the kernel cases only, not `bad_arguments_are_errors`, which tests
//! the CUDA backend's host-side checks (the emulation's host side mirrors the launches,
//! not the checks). At the end: known-answer tests of the emulation itself
//! (`emulation_*`), and `kernels/philox.cuh` on it against `tmcc_kernels::philox`.
//!
//! Element `i` passes when `|got − ref| ≤ atol + rtol·|ref|`; every comparison prints its
//! worst element (relative to its allowance). Inputs are scaled so that results are O(1)
//! (a sum of `n` terms gets terms of size `1/√n`).
//!
//! | what | atol | rtol |
//! |---|---|---|
//! | products (`gemm`, inputs scaled by `1/√k`) | 1e-5 | 1e-4 |
//! | sums of a row or column (gather, scatter, col_sum, loss rows) | 1e-5 | 1e-5 |
//! | one-rounding element-wise ops (relu, mask, axpy, add_bias, fill, dout) | 1e-6 | 1e-6 |
//! | Adam (parameters and moments after one step) | 1e-6 | 1e-5 |

use tmcc_kernels::cpu::{BatchPath, Cpu};
use tmcc_kernels::{
    AdamSpec, Backend, Gemm, KernelError, LossKind, LossSpec, Operand, SparseSpec, View,
};
use tmcc_testkit::naive::{HostCsr, Naive, Rng};
use tmcc_testkit::Tol;

mod emu_device;

const PRODUCT: Tol = Tol {
    atol: 1e-5,
    rtol: 1e-4,
};
const SUMS: Tol = Tol {
    atol: 1e-5,
    rtol: 1e-5,
};
const ELEMENT: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-6,
};
const ADAM: Tol = Tol {
    atol: 1e-6,
    rtol: 1e-5,
};

/// Asserts `got ≈ want` element-wise (unit scale) and prints the worst element.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tol) {
    tmcc_testkit::assert_close(what, got, want, 1.0, tol)
}

fn up<B: Backend<f32>>(bk: &B, host: &[f32]) -> B::Buf {
    bk.upload(host).unwrap()
}

fn down<B: Backend<f32>>(bk: &B, buf: &B::Buf) -> Vec<f32> {
    bk.read(buf).unwrap()
}

// ---------------------------------------------------------------------------------------
// Test bodies: `bk` is the backend under test, `reference` the one it must agree with.
// ---------------------------------------------------------------------------------------

fn memory<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(1);
    let host = rng.vec(1000, -1.0, 1.0);
    let mut buf = up(bk, &host);
    assert_eq!(bk.len(&buf), 1000);
    assert_eq!(down(bk, &buf), host);
    let longer = rng.vec(1500, -1.0, 1.0);
    bk.write(&mut buf, &longer).unwrap();
    assert_eq!(down(bk, &buf), longer);
    let same = rng.vec(1500, -1.0, 1.0);
    bk.write(&mut buf, &same).unwrap();
    assert_eq!(down(bk, &buf), same);
    bk.write(&mut buf, &[]).unwrap();
    assert_eq!(bk.len(&buf), 0);
    assert!(down(bk, &buf).is_empty());
    bk.write(&mut buf, &host[..7]).unwrap();
    assert_eq!(down(bk, &buf), &host[..7]);
    let z = bk.zeros(333).unwrap();
    assert_eq!(down(bk, &z), vec![0.0; 333]);
    assert!(down(bk, &bk.zeros(0).unwrap()).is_empty());
    assert!(down(bk, &up(bk, &[])).is_empty());
    let mut f = bk.zeros(70_001).unwrap();
    bk.fill(&mut f, 2.5).unwrap();
    assert!(down(bk, &f).iter().all(|&v| v == 2.5));
    bk.fill(&mut f, 0.0).unwrap();
    assert!(down(bk, &f).iter().all(|&v| v == 0.0));
    bk.fill(&mut f, -0.0).unwrap();
    assert!(down(bk, &f)
        .iter()
        .all(|&v| v == 0.0 && v.is_sign_negative()));
    // write_idx: rewrite a CSR batch in place (other lengths), then gather through it.
    let a = HostCsr::random(&mut rng, 2, 9, 12, 0.2);
    let b = HostCsr::random(&mut rng, 2, 9, 12, 0.4);
    let mut x = a.upload(bk);
    bk.write_idx(&mut x.row_ptr, &b.row_ptr).unwrap();
    bk.write_idx(&mut x.col, &b.col).unwrap();
    bk.write(&mut x.val, &b.val).unwrap();
    x.nnz = b.col.len();
    let table = rng.vec(2 * 12 * 5, -1.0, 1.0);
    let spec = SparseSpec {
        width: 5,
        y: View::packed(9 * 5),
        t: View::packed(12 * 5),
        t_row_stride: 5,
        t_col_stride: 1,
        beta: 0.0,
    };
    let mut y = bk.zeros(2 * 9 * 5).unwrap();
    bk.sparse_gather(&spec, &x, &up(bk, &table), &mut y)
        .unwrap();
    let xr = b.upload(reference);
    let mut yr = reference.zeros(2 * 9 * 5).unwrap();
    reference
        .sparse_gather(&spec, &xr, &up(reference, &table), &mut yr)
        .unwrap();
    assert_close(
        "memory: gather after write_idx",
        &down(bk, &y),
        &down(reference, &yr),
        SUMS,
    );
}

/// One product case: shapes, transposes, coefficients and operand placement.
#[derive(Clone, Copy, Debug)]
struct GemmCase {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
    /// `B` shared by all instances (stride 0).
    shared_b: bool,
}

fn run_gemm<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R, c: GemmCase, rng: &mut Rng) {
    let (m, n, k) = (c.m, c.n, c.k);
    let scale = 1.0 / (k.max(1) as f32).sqrt();
    // A: offset 3, stride padded by 5; B: offset 1, stride padded (or 0); C: offset 2.
    let a_view = View::new(3, m * k + 5);
    let b_view = if c.shared_b {
        View::new(1, 0)
    } else {
        View::new(1, k * n + 2)
    };
    let c_view = View::new(2, m * n + 1);
    let len = |v: View, blk: usize| v.off + c.batch * v.stride.max(blk) + blk;
    let a = rng.vec(len(a_view, m * k), -scale, scale);
    let b = rng.vec(len(b_view, k * n), -1.0, 1.0);
    let mut c0 = rng.vec(len(c_view, m * n), -1.0, 1.0);
    if c.beta == 0.0 {
        // β = 0 must not read C: NaN there may not propagate.
        for (i, v) in c0.iter_mut().enumerate() {
            if i % 3 == 0 {
                *v = f32::NAN;
            }
        }
    }
    let g = Gemm {
        batch: c.batch,
        m,
        n,
        k,
        alpha: c.alpha,
        beta: c.beta,
        a: Operand {
            view: a_view,
            trans: c.ta,
        },
        b: Operand {
            view: b_view,
            trans: c.tb,
        },
        c: c_view,
    };
    let mut cb = up(bk, &c0);
    bk.gemm(&g, &up(bk, &a), &up(bk, &b), &mut cb).unwrap();
    let mut cr = up(reference, &c0);
    reference
        .gemm(&g, &up(reference, &a), &up(reference, &b), &mut cr)
        .unwrap();
    let (got, want) = (down(bk, &cb), down(reference, &cr));
    // Elements outside the C blocks must be untouched (NaN stays NaN): compare the blocks
    // numerically and the gaps bitwise.
    let mut inside = vec![false; got.len()];
    for z in 0..c.batch {
        let o = c_view.off + z * c_view.stride;
        inside[o..o + m * n].iter_mut().for_each(|x| *x = true);
    }
    for (i, &ins) in inside.iter().enumerate() {
        if !ins {
            assert_eq!(
                got[i].to_bits(),
                c0[i].to_bits(),
                "gemm {c:?}: C[{i}] outside the blocks changed"
            );
        }
    }
    let pick = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .zip(&inside)
            .filter(|(_, &ins)| ins)
            .map(|(&x, _)| x)
            .collect()
    };
    assert_close(&format!("gemm {c:?}"), &pick(&got), &pick(&want), PRODUCT);
}

fn gemm<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(2);
    let case = |batch, m, n, k, ta, tb| GemmCase {
        batch,
        m,
        n,
        k,
        ta,
        tb,
        alpha: 1.0,
        beta: 0.0,
        shared_b: false,
    };
    // The products of the fast path at the seed setting (F=100, H=50, D=1000, B=1024).
    let seed_shapes = [
        case(2, 100, 50, 1000, true, true),   // Aᵀ = W_Eᵀ W1ᵀ
        case(2, 100, 50, 1000, true, false),  // C = W_Eᵀ W2
        case(2, 100, 1, 1000, true, false),   // c = W_Eᵀ b2
        case(2, 1024, 100, 50, false, true),  // out = h Cᵀ
        case(2, 100, 50, 1024, true, false),  // dC = doutᵀ h
        case(2, 1024, 50, 100, false, false), // dh = dout C
        case(2, 50, 1000, 100, true, true),   // dW1 = dAᵀᵀ W_Eᵀ
        case(2, 1000, 50, 100, false, false), // dW2 = W_E dC
        case(2, 1000, 1, 100, false, false),  // db2 = W_E dc
        case(2, 50, 100, 1024, true, false),  // tied: hᵀ dout
    ];
    for c in seed_shapes {
        run_gemm(
            bk,
            reference,
            GemmCase {
                shared_b: c.ta,
                ..c
            },
            &mut rng,
        );
    }
    // Tile edges, tiny and degenerate shapes, every transpose, β and α.
    let odd = [
        (1, 1, 1),
        (7, 5, 3),
        (33, 65, 17),
        (64, 64, 16),
        (65, 63, 33),
        (31, 97, 40),
        (129, 2, 70),
        (3, 4, 0),
    ];
    for (i, &(m, n, k)) in odd.iter().enumerate() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (alpha, beta) = [(1.0, 0.0), (0.5, 1.0), (-2.0, -0.5)][(i + ta as usize) % 3];
            let c = GemmCase {
                alpha,
                beta,
                shared_b: tb,
                ..case(3, m, n, k, ta, tb)
            };
            run_gemm(bk, reference, c, &mut rng);
        }
    }
}

/// Gather and scatter layouts: packed tables, a `W1`-like column view into a parameter
/// buffer (`t_row_stride = 1`, `t_col_stride = D`), and the residual gather (`β = 1`).
fn sparse_layouts() -> Vec<(&'static str, usize, View, usize, usize, f32, usize)> {
    // (name, width, table view, row stride, col stride, beta, table length)
    let (k, f) = (3, 100);
    let (h, d, p_len) = (13, 107, 13 * 107 + 20);
    vec![
        (
            "packed F×H",
            50,
            View::packed(f * 50),
            50,
            1,
            0.0,
            k * f * 50,
        ),
        ("W1 columns", h, View::new(5, p_len), 1, d, 0.0, k * p_len),
        (
            "residual F×F, β=1",
            f,
            View::packed(f * f),
            f,
            1,
            1.0,
            k * f * f,
        ),
        (
            "packed, β=0.5",
            50,
            View::packed(f * 50),
            50,
            1,
            0.5,
            k * f * 50,
        ),
        ("shared table", 20, View::new(0, 0), 20, 1, 0.0, f * 20),
    ]
}

/// The batches the gather and scatter read: `(name, rows per instance, density, the CPU
/// backend's path)`: it walks the rows of the sparse one and runs dense products for the
/// dense one, whose 300 rows span two gather tasks and several dense segments per instance.
const SPARSE_BATCHES: [(&str, usize, f64, BatchPath); 2] = [
    ("sparse", 37, 0.05, BatchPath::Walk),
    ("dense", 300, 0.5, BatchPath::Dense),
];

/// A random batch of `SPARSE_BATCHES`, checked to take its CPU path.
fn batch_on_path(
    rng: &mut Rng,
    k: usize,
    bsz: usize,
    f: usize,
    density: f64,
    path: BatchPath,
) -> HostCsr {
    let x = HostCsr::random(rng, k, bsz, f, density);
    assert_eq!(
        BatchPath::for_batch(&x.upload(&Cpu)),
        path,
        "density {density}"
    );
    x
}

fn sparse_gather<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(3);
    let (k, f) = (3, 100);
    for (batch, bsz, density, path) in SPARSE_BATCHES {
        let x = batch_on_path(&mut rng, k, bsz, f, density, path);
        let (xb, xr) = (x.upload(bk), x.upload(reference));
        for (name, w, t, trs, tcs, beta, t_len) in sparse_layouts() {
            let table = rng.vec(t_len, -1.0, 1.0);
            let mut y0 = rng.vec(k * bsz * w, -1.0, 1.0);
            if beta == 0.0 {
                y0.iter_mut().step_by(2).for_each(|v| *v = f32::NAN);
            }
            let s = SparseSpec {
                width: w,
                y: View::packed(bsz * w),
                t,
                t_row_stride: trs,
                t_col_stride: tcs,
                beta,
            };
            let mut yb = up(bk, &y0);
            bk.sparse_gather(&s, &xb, &up(bk, &table), &mut yb).unwrap();
            let mut yr = up(reference, &y0);
            reference
                .sparse_gather(&s, &xr, &up(reference, &table), &mut yr)
                .unwrap();
            assert_close(
                &format!("sparse_gather {batch} {name}"),
                &down(bk, &yb),
                &down(reference, &yr),
                SUMS,
            );
        }
    }
}

fn sparse_scatter<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(4);
    let (k, f) = (3, 100);
    for (batch, bsz, density, path) in SPARSE_BATCHES {
        let x = batch_on_path(&mut rng, k, bsz, f, density, path);
        let (xb, xr) = (x.upload(bk), x.upload(reference));
        for (name, w, t, trs, tcs, _, t_len) in sparse_layouts() {
            if t.stride == 0 {
                continue; // an output cannot be shared between instances
            }
            let table0 = rng.vec(t_len, -1.0, 1.0);
            let y = rng.vec(k * bsz * w, -1.0, 1.0);
            let s = SparseSpec {
                width: w,
                y: View::packed(bsz * w),
                t,
                t_row_stride: trs,
                t_col_stride: tcs,
                beta: 0.0,
            };
            let mut tb = up(bk, &table0);
            bk.sparse_scatter(&s, &xb, &up(bk, &y), &mut tb).unwrap();
            let mut tr = up(reference, &table0);
            reference
                .sparse_scatter(&s, &xr, &up(reference, &y), &mut tr)
                .unwrap();
            assert_close(
                &format!("sparse_scatter {batch} {name}"),
                &down(bk, &tb),
                &down(reference, &tr),
                SUMS,
            );
        }
    }
}

fn add_bias<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(5);
    for (k, rows, width) in [(3, 37, 50), (1, 1024, 100), (4, 5, 1)] {
        let view = View::new(4, width + 11);
        let bias = rng.vec(4 + k * (width + 11), -1.0, 1.0);
        let y0 = rng.vec(k * rows * width, -1.0, 1.0);
        let mut yb = up(bk, &y0);
        bk.add_bias(rows, width, &up(bk, &bias), view, &mut yb)
            .unwrap();
        let mut yr = up(reference, &y0);
        reference
            .add_bias(rows, width, &up(reference, &bias), view, &mut yr)
            .unwrap();
        assert_close(
            &format!("add_bias K={k} rows={rows} width={width}"),
            &down(bk, &yb),
            &down(reference, &yr),
            ELEMENT,
        );
    }
}

fn col_sum<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(6);
    for (k, rows, width) in [(3, 37, 50), (2, 1024, 100), (5, 3, 1), (2, 8, 33)] {
        let view = View::new(7, width + 3);
        let out0 = rng.vec(7 + k * (width + 3), -1.0, 1.0);
        let s = 1.0 / (rows as f32).sqrt();
        let y = rng.vec(k * rows * width, -s, s);
        let mut ob = up(bk, &out0);
        bk.col_sum(rows, width, &up(bk, &y), &mut ob, view).unwrap();
        let mut or = up(reference, &out0);
        reference
            .col_sum(rows, width, &up(reference, &y), &mut or, view)
            .unwrap();
        assert_close(
            &format!("col_sum K={k} rows={rows} width={width}"),
            &down(bk, &ob),
            &down(reference, &or),
            SUMS,
        );
    }
}

fn relu_and_mask<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(7);
    for n in [1, 1000, 100_003] {
        let mut pre = rng.vec(n, -1.0, 1.0);
        pre.iter_mut().step_by(5).for_each(|v| *v = 0.0);
        let g0 = rng.vec(n, -1.0, 1.0);
        let (pb, pr) = (up(bk, &pre), up(reference, &pre));
        let (mut hb, mut hr) = (bk.zeros(n).unwrap(), reference.zeros(n).unwrap());
        bk.relu(&pb, &mut hb).unwrap();
        reference.relu(&pr, &mut hr).unwrap();
        assert_close(
            &format!("relu n={n}"),
            &down(bk, &hb),
            &down(reference, &hr),
            ELEMENT,
        );
        let (mut gb, mut gr) = (up(bk, &g0), up(reference, &g0));
        bk.relu_mask(&pb, &mut gb).unwrap();
        reference.relu_mask(&pr, &mut gr).unwrap();
        assert_close(
            &format!("relu_mask n={n}"),
            &down(bk, &gb),
            &down(reference, &gr),
            ELEMENT,
        );
    }
}

fn axpy<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(8);
    for (n, alpha) in [(1, 1.0), (999, -0.75), (200_000, 2.0)] {
        let x = rng.vec(n, -1.0, 1.0);
        let y0 = rng.vec(n, -1.0, 1.0);
        let mut yb = up(bk, &y0);
        bk.axpy(alpha, &up(bk, &x), &mut yb).unwrap();
        let mut yr = up(reference, &y0);
        reference.axpy(alpha, &up(reference, &x), &mut yr).unwrap();
        assert_close(
            &format!("axpy n={n}"),
            &down(bk, &yb),
            &down(reference, &yr),
            ELEMENT,
        );
    }
}

fn loss<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(9);
    let (k, bsz, f) = (2, 45, 70);
    let x = HostCsr::random(&mut rng, k, bsz, f, 0.1);
    let imp = rng.vec(f, 0.5, 2.0);
    let scale = 1.0 / (bsz * f) as f32;
    for (kind, r) in [
        (LossKind::L2, 1.0f32),
        (LossKind::L1, 1.0),
        (LossKind::L1, -0.3),
        (LossKind::L2, 0.0),
    ] {
        let exact = r == 0.0 || r == 1.0;
        // Sparse labels on the cells of `x` (the kernel takes any; these are the TMCC
        // task's shape, ReLU(v) + r·v).
        let y = HostCsr {
            val: x.val.iter().map(|&v| v.max(0.0) + r * v).collect(),
            ..x.clone()
        };
        let mut out = rng.vec(k * bsz * f, -1.0, 1.0);
        // Cells where out equals the label exactly (error 0: the L1 subgradient is 0).
        let mut zero_cells = Vec::new();
        for row in 0..k * bsz {
            let (lo, hi) = (x.row_ptr[row] as usize, x.row_ptr[row + 1] as usize);
            if exact && row % 2 == 0 {
                if let Some(e) = (lo..hi).next() {
                    let c = row * f + x.col[e] as usize;
                    out[c] = y.val[e];
                    zero_cells.push(c);
                }
            }
            let c = row * f + (row * 7) % f;
            if !x.col[lo..hi].contains(&(((row * 7) % f) as u32)) {
                out[c] = 0.0;
                zero_cells.push(c);
            }
        }
        let (yb, yr) = (y.upload(bk), y.upload(reference));
        let spec = LossSpec { kind, scale };
        let nan = vec![f32::NAN; k * bsz * f];
        let (ob, or) = (up(bk, &out), up(reference, &out));
        let (ib, ir) = (up(bk, &imp), up(reference, &imp));
        let (mut lb, mut lr) = (
            bk.zeros(k * bsz).unwrap(),
            reference.zeros(k * bsz).unwrap(),
        );
        let (mut db, mut dr) = (up(bk, &nan), up(reference, &nan));
        bk.loss(&spec, &ob, &yb, &ib, &mut lb, Some(&mut db))
            .unwrap();
        reference
            .loss(&spec, &or, &yr, &ir, &mut lr, Some(&mut dr))
            .unwrap();
        let what = format!("loss {kind:?} r={r}");
        // Row losses are O(scale); compare them relative to the batch loss scale.
        let norm = |v: Vec<f32>| v.into_iter().map(|l| l / scale).collect::<Vec<_>>();
        assert_close(
            &format!("{what}: row_loss/scale"),
            &norm(down(bk, &lb)),
            &norm(down(reference, &lr)),
            SUMS,
        );
        let (dgot, dwant) = (down(bk, &db), down(reference, &dr));
        let norm_d = |v: &[f32]| v.iter().map(|d| d / scale).collect::<Vec<_>>();
        assert_close(
            &format!("{what}: dout/scale"),
            &norm_d(&dgot),
            &norm_d(&dwant),
            ELEMENT,
        );
        for &c in &zero_cells {
            assert_eq!(dgot[c], 0.0, "{what}: gradient at a zero error (cell {c})");
        }
        // Without a gradient: the same losses.
        let mut lb2 = bk.zeros(k * bsz).unwrap();
        bk.loss(&spec, &ob, &yb, &ib, &mut lb2, None).unwrap();
        assert_eq!(down(bk, &lb2), down(bk, &lb), "{what}: losses without dout");
    }
}

fn adam<B: Backend<f32>, R: Backend<f32>>(bk: &B, reference: &R) {
    let mut rng = Rng(10);
    let n = 100_003;
    let p0 = rng.vec(n, -1.0, 1.0);
    let mut g = rng.vec(n, -1e-2, 1e-2);
    g.iter_mut().step_by(17).for_each(|v| *v = 0.0);
    let m0 = rng.vec(n, -1e-3, 1e-3);
    let v0 = rng.vec(n, 0.0, 1e-4);
    for (t, wd) in [(1, 0.0f32), (3, 0.01)] {
        let spec = AdamSpec {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: wd,
            bias_correction1: 1.0 - 0.9f32.powi(t),
            bias_correction2: 1.0 - 0.999f32.powi(t),
        };
        let (mut pb, mut mb, mut vb) = (up(bk, &p0), up(bk, &m0), up(bk, &v0));
        bk.adam(&spec, &mut pb, &up(bk, &g), &mut mb, &mut vb)
            .unwrap();
        let (mut pr, mut mr, mut vr) = (up(reference, &p0), up(reference, &m0), up(reference, &v0));
        reference
            .adam(&spec, &mut pr, &up(reference, &g), &mut mr, &mut vr)
            .unwrap();
        let what = format!("adam t={t} wd={wd}");
        assert_close(
            &format!("{what}: params"),
            &down(bk, &pb),
            &down(reference, &pr),
            ADAM,
        );
        assert_close(
            &format!("{what}: m"),
            &down(bk, &mb),
            &down(reference, &mr),
            ADAM,
        );
        assert_close(
            &format!("{what}: v"),
            &down(bk, &vb),
            &down(reference, &vr),
            ADAM,
        );
    }
}

/// Bad arguments are errors, never panics; the backend keeps working afterwards.
fn bad_arguments_are_errors<B: Backend<f32>, R: Backend<f32>>(bk: &B, _reference: &R) {
    let buf = |n| bk.zeros(n).unwrap();
    let oob = |r: tmcc_kernels::Result<()>, what: &str| match r {
        Err(KernelError::OutOfBounds { .. }) | Err(KernelError::Invalid(_)) => {}
        other => panic!("{what}: expected an error, got {other:?}"),
    };
    let g = Gemm {
        batch: 2,
        m: 4,
        n: 3,
        k: 5,
        alpha: 1.0,
        beta: 0.0,
        a: Operand::n(View::packed(20)),
        b: Operand::t(View::packed(15)),
        c: View::packed(12),
    };
    let (a, b) = (buf(40), buf(30));
    oob(bk.gemm(&g, &buf(39), &b, &mut buf(24)), "gemm short A");
    oob(bk.gemm(&g, &a, &buf(29), &mut buf(24)), "gemm short B");
    oob(bk.gemm(&g, &a, &b, &mut buf(23)), "gemm short C");
    let overlap = Gemm {
        c: View::new(0, 11),
        ..g
    };
    oob(
        bk.gemm(&overlap, &a, &b, &mut buf(24)),
        "gemm overlapping C",
    );
    bk.gemm(&g, &a, &b, &mut buf(24)).unwrap();

    let mut rng = Rng(11);
    let x = HostCsr::random(&mut rng, 2, 4, 6, 0.5).upload(bk);
    let s = SparseSpec {
        width: 3,
        y: View::packed(12),
        t: View::packed(18),
        t_row_stride: 3,
        t_col_stride: 1,
        beta: 0.0,
    };
    oob(
        bk.sparse_gather(&s, &x, &buf(35), &mut buf(24)),
        "gather short table",
    );
    oob(
        bk.sparse_gather(&s, &x, &buf(36), &mut buf(23)),
        "gather short y",
    );
    let unpacked = SparseSpec {
        y: View::new(1, 12),
        ..s
    };
    oob(
        bk.sparse_gather(&unpacked, &x, &buf(36), &mut buf(25)),
        "gather unpacked y",
    );
    let mut bad_x = HostCsr::random(&mut rng, 2, 4, 6, 0.5).upload(bk);
    bad_x.row_ptr = bk.upload_idx(&[0, 0, 0]).unwrap();
    oob(
        bk.sparse_gather(&s, &bad_x, &buf(36), &mut buf(24)),
        "gather bad CSR",
    );
    oob(
        bk.sparse_scatter(&s, &x, &buf(24), &mut buf(35)),
        "scatter short table",
    );
    let shared = SparseSpec {
        t: View::new(0, 0),
        ..s
    };
    oob(
        bk.sparse_scatter(&shared, &x, &buf(24), &mut buf(36)),
        "scatter shared output",
    );
    bk.sparse_scatter(&s, &x, &buf(24), &mut buf(36)).unwrap();

    oob(
        bk.add_bias(4, 3, &buf(5), View::packed(3), &mut buf(24)),
        "add_bias short bias",
    );
    oob(
        bk.col_sum(4, 3, &buf(24), &mut buf(5), View::packed(3)),
        "col_sum short out",
    );
    oob(
        bk.col_sum(4, 3, &buf(24), &mut buf(6), View::packed(2)),
        "col_sum overlap",
    );
    oob(bk.relu(&buf(5), &mut buf(6)), "relu lengths");
    oob(bk.relu_mask(&buf(5), &mut buf(6)), "relu_mask lengths");
    oob(bk.axpy(1.0, &buf(5), &mut buf(6)), "axpy lengths");
    let ls = LossSpec {
        kind: LossKind::L2,
        scale: 1.0,
    };
    let out = buf(48);
    oob(
        bk.loss(&ls, &out, &x, &buf(5), &mut buf(8), None),
        "loss importance",
    );
    oob(
        bk.loss(&ls, &out, &x, &buf(6), &mut buf(7), None),
        "loss row_loss",
    );
    oob(
        bk.loss(&ls, &buf(47), &x, &buf(6), &mut buf(8), None),
        "loss out",
    );
    oob(
        bk.loss(&ls, &out, &x, &buf(6), &mut buf(8), Some(&mut buf(47))),
        "loss dout",
    );
    bk.loss(&ls, &out, &x, &buf(6), &mut buf(8), Some(&mut buf(48)))
        .unwrap();
    let spec = AdamSpec {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        bias_correction1: 0.1,
        bias_correction2: 0.001,
    };
    oob(
        bk.adam(&spec, &mut buf(5), &buf(4), &mut buf(5), &mut buf(5)),
        "adam grads",
    );
    oob(
        bk.adam(&spec, &mut buf(5), &buf(5), &mut buf(4), &mut buf(5)),
        "adam m",
    );
    oob(
        bk.adam(&spec, &mut buf(5), &buf(5), &mut buf(5), &mut buf(6)),
        "adam v",
    );
    // Still healthy.
    assert_eq!(down(bk, &up(bk, &[1.0, 2.0])), vec![1.0, 2.0]);
}

/// Empty shapes are no-ops (no launch of an empty grid).
fn empty_operations<B: Backend<f32>, R: Backend<f32>>(bk: &B, _reference: &R) {
    let mut e = bk.zeros(0).unwrap();
    bk.fill(&mut e, 1.0).unwrap();
    bk.relu(&bk.zeros(0).unwrap(), &mut e).unwrap();
    bk.relu_mask(&bk.zeros(0).unwrap(), &mut e).unwrap();
    bk.axpy(1.0, &bk.zeros(0).unwrap(), &mut e).unwrap();
    let mut c = up(bk, &[7.0; 6]);
    for (batch, m, n, k) in [(0, 2, 3, 4), (2, 0, 3, 4), (2, 3, 0, 4)] {
        let g = Gemm {
            batch,
            m,
            n,
            k,
            alpha: 1.0,
            beta: 0.0,
            a: Operand::n(View::packed(m * k)),
            b: Operand::n(View::packed(k * n)),
            c: View::packed(m * n),
        };
        bk.gemm(&g, &bk.zeros(24).unwrap(), &bk.zeros(24).unwrap(), &mut c)
            .unwrap();
    }
    // k = 0: C = β·C (here β = 0: zeros).
    let g = Gemm {
        batch: 2,
        m: 1,
        n: 3,
        k: 0,
        alpha: 1.0,
        beta: 0.0,
        a: Operand::n(View::packed(0)),
        b: Operand::n(View::packed(0)),
        c: View::packed(3),
    };
    bk.gemm(&g, &bk.zeros(0).unwrap(), &bk.zeros(0).unwrap(), &mut c)
        .unwrap();
    assert_eq!(down(bk, &c), vec![0.0; 6]);
    let x = HostCsr::random(&mut Rng(12), 0, 5, 4, 0.5).upload(bk);
    let s = SparseSpec {
        width: 3,
        y: View::packed(15),
        t: View::packed(12),
        t_row_stride: 3,
        t_col_stride: 1,
        beta: 0.0,
    };
    bk.sparse_gather(&s, &x, &bk.zeros(0).unwrap(), &mut bk.zeros(0).unwrap())
        .unwrap();
    bk.sparse_scatter(&s, &x, &bk.zeros(0).unwrap(), &mut bk.zeros(0).unwrap())
        .unwrap();
    let ls = LossSpec {
        kind: LossKind::L1,
        scale: 1.0,
    };
    bk.loss(
        &ls,
        &bk.zeros(0).unwrap(),
        &x,
        &bk.zeros(4).unwrap(),
        &mut bk.zeros(0).unwrap(),
        None,
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Instantiation.
// ---------------------------------------------------------------------------------------

/// The CUDA backend on device 0, or `None` after printing why the test is skipped (to the
/// real stderr, so that it shows even when the test harness captures output).
#[cfg(feature = "cuda")]
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

macro_rules! instantiate {
    (kernels: [$($case:ident),* $(,)?], host: [$($host:ident),* $(,)?] $(,)?) => {
        mod cpu_vs_naive {
            $(#[test]
            fn $case() {
                super::$case(&super::Cpu, &super::Naive)
            })*
            $(#[test]
            fn $host() {
                super::$host(&super::Cpu, &super::Naive)
            })*
        }
        #[cfg(feature = "cuda")]
        mod cuda_vs_cpu {
            $(#[test]
            fn $case() {
                if let Some(bk) = super::cuda_or_skip(concat!("cuda_vs_cpu::", stringify!($case))) {
                    super::$case(&bk, &super::Cpu)
                }
            })*
            $(#[test]
            fn $host() {
                if let Some(bk) = super::cuda_or_skip(concat!("cuda_vs_cpu::", stringify!($host))) {
                    super::$host(&bk, &super::Cpu)
                }
            })*
        }
        mod emu_vs_cpu {
            use super::emu_device::{emu_or_skip, Build};
            $(#[test]
            fn $case() {
                if let Some(bk) = emu_or_skip(concat!("emu_vs_cpu::", stringify!($case)), Build::Plain) {
                    super::$case(&bk, &super::Cpu)
                }
            })*
        }
        mod emu_asan_vs_cpu {
            use super::emu_device::{emu_or_skip, Build};
            $(#[test]
            fn $case() {
                if let Some(bk) = emu_or_skip(concat!("emu_asan_vs_cpu::", stringify!($case)), Build::Asan) {
                    super::$case(&bk, &super::Cpu)
                }
            })*
        }
    };
}

instantiate!(
    kernels: [
        memory,
        gemm,
        sparse_gather,
        sparse_scatter,
        add_bias,
        col_sum,
        relu_and_mask,
        axpy,
        loss,
        adam,
        empty_operations,
    ],
    host: [bad_arguments_are_errors],
);

/// The emulated driver holds exactly the kernels NVRTC compiles for the CUDA backend (and
/// its own test kernels, named `emu_*`).
#[cfg(feature = "cuda")]
#[test]
fn emulated_kernels_are_the_cuda_backends() {
    let Some(emu) = emu_device::emu_or_skip(
        "emulated_kernels_are_the_cuda_backends",
        emu_device::Build::Plain,
    ) else {
        return;
    };
    let mut got: Vec<String> = emu
        .kernels()
        .into_iter()
        .filter(|k| !k.starts_with("emu_"))
        .collect();
    let mut want: Vec<String> = tmcc_kernels::cuda::nvrtc::SOURCES
        .iter()
        .flat_map(|s| s.functions.iter().map(|f| f.to_string()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// The emulation's warp collectives on known answers (both builds): per lane of two
/// warps, shuffles down by 1, xor 5, up by 3, from lane 7, and a ballot.
#[test]
fn emulation_warp_collectives() {
    use emu_device::{emu_or_skip, Arg, Build};
    for build in [Build::Plain, Build::Asan] {
        let Some(emu) = emu_or_skip("emulation_warp_collectives", build) else {
            return;
        };
        let mut out = vec![0u32; 64 * 5];
        emu.launch(
            "emu_selftest_warp",
            (1, 1, 1),
            (64, 1, 1),
            &mut [Arg::U32Out(&mut out)],
        )
        .unwrap();
        for t in 0..64u32 {
            let lane = t % 32;
            let ballot = if t < 32 { 0xaaaa_aaaa } else { 0xffff_ffff };
            let want = [
                if lane < 31 { lane + 1 } else { lane },
                lane ^ 5,
                if lane >= 3 { lane - 3 } else { lane },
                7,
                ballot,
            ];
            let at = 5 * t as usize;
            assert_eq!(out[at..at + 5], want, "{build:?}: thread {t}");
        }
    }
}

/// The emulation's block barrier, per-block shared memory and atomics on known answers:
/// each thread reads what its mirror thread wrote before `__syncthreads`, and 3 blocks of
/// 96 threads add 1 each to one total.
#[test]
fn emulation_block_barrier_shared_memory_and_atomics() {
    use emu_device::{emu_or_skip, Arg, Build};
    for build in [Build::Plain, Build::Asan] {
        let Some(emu) = emu_or_skip("emulation_block_barrier_shared_memory_and_atomics", build)
        else {
            return;
        };
        let (mut out, mut total) = (vec![0f32; 3 * 96], vec![0f32]);
        emu.launch(
            "emu_selftest_block",
            (3, 1, 1),
            (96, 1, 1),
            &mut [Arg::F32Out(&mut out), Arg::F32Out(&mut total)],
        )
        .unwrap();
        for (i, &v) in out.iter().enumerate() {
            let (b, t) = (i / 96, i % 96);
            assert_eq!(
                v,
                (b * 1000 + 95 - t) as f32,
                "{build:?}: block {b} thread {t}"
            );
        }
        assert_eq!(total, [288.0], "{build:?}: atomic total");
    }
}

/// Philox-4×32-10 of the counters `(lo(i) ^ c[0], hi(i) ^ c[1], c[2], c[3])`, `i < n`,
/// under `key`, computed by `kernels/philox.cuh` on the emulated device.
fn emulated_philox(emu: &emu_device::Emu, n: usize, key: [u32; 2], c: [u32; 4]) -> Vec<u32> {
    use emu_device::Arg;
    let word = |v: u32| Arg::Val(v.to_ne_bytes().to_vec());
    let mut out = vec![0u32; 4 * n];
    emu.launch(
        "emu_philox_fill",
        (64, 1, 1),
        (256, 1, 1),
        &mut [
            Arg::U32Out(&mut out),
            Arg::Val((n as u64).to_ne_bytes().to_vec()),
            word(key[0]),
            word(key[1]),
            word(c[0]),
            word(c[1]),
            word(c[2]),
            word(c[3]),
        ],
    )
    .unwrap();
    out
}

/// `kernels/philox.cuh` on the emulated device (both builds): Random123's known answers,
/// then the bits of `tmcc_kernels::philox` for 70 001 consecutive counters under several
/// keys and upper counter words.
#[test]
fn philox_cuda_equals_rust_on_the_emulated_device() {
    use emu_device::{emu_or_skip, Build};
    use tmcc_kernels::philox::{philox4x32_10, KNOWN_ANSWERS};
    let n = 70_001usize;
    let streams = [
        ([0u32, 0], [0u32, 0]),
        ([u32::MAX, u32::MAX], [u32::MAX, u32::MAX]),
        ([0xa409_3822, 0x299f_31d0], [0x1319_8a2e, 0x0370_7344]),
        ([12345, 7], [3, 0x8000_0000]),
    ];
    for build in [Build::Plain, Build::Asan] {
        let Some(emu) = emu_or_skip("philox_cuda_equals_rust_on_the_emulated_device", build) else {
            return;
        };
        for (counter, key, want) in KNOWN_ANSWERS {
            let got = emulated_philox(&emu, 1, key, counter);
            assert_eq!(
                got, want,
                "{build:?}: known answer for counter {counter:08x?}"
            );
        }
        for (key, [c2, c3]) in streams {
            let out = emulated_philox(&emu, n, key, [0, 0, c2, c3]);
            for i in 0..n {
                let counter = [i as u32, (i as u64 >> 32) as u32, c2, c3];
                assert_eq!(
                    out[4 * i..4 * i + 4],
                    philox4x32_10(counter, key),
                    "{build:?}: key {key:08x?}, counter {counter:08x?}"
                );
            }
        }
    }
}
