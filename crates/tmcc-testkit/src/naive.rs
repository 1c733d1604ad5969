//! A plain, obviously-correct backend for tests: host `Vec`s, textbook loops, every sum
//! accumulated in `f64` and rounded once. It is the oracle the CPU backend is checked
//! against (`backend_parity.rs`) and, in the model crate's `cuda_parity.rs`, a stand-in
//! "other backend" with a different rounding order. No bounds checks beyond Rust's own:
//! it is only called with valid arguments.

use tmcc_kernels::{AdamSpec, Backend, Csr, Gemm, LossKind, LossSpec, Result, SparseSpec, View};

#[derive(Clone, Copy, Debug, Default)]
pub struct Naive;

/// A small deterministic generator (SplitMix64) for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit() as f32
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.range(lo, hi)).collect()
    }
}

/// A host CSR batch: `rows` rows over `cols` columns, each cell active with probability
/// `p` (sorted columns, values in [-1, 1)).
#[derive(Clone, Debug)]
pub struct HostCsr {
    pub instances: usize,
    pub rows_per_instance: usize,
    pub cols: usize,
    pub row_ptr: Vec<u32>,
    pub col: Vec<u32>,
    pub val: Vec<f32>,
}

impl HostCsr {
    pub fn random(rng: &mut Rng, instances: usize, rows: usize, cols: usize, p: f64) -> Self {
        let (mut row_ptr, mut col, mut val) = (vec![0u32], Vec::new(), Vec::new());
        for r in 0..instances * rows {
            // Every few rows: an empty row, or a full one.
            let pr = match r % 11 {
                3 => 0.0,
                7 => 1.0,
                _ => p,
            };
            for c in 0..cols {
                if rng.unit() < pr {
                    col.push(c as u32);
                    val.push(rng.range(-1.0, 1.0));
                }
            }
            row_ptr.push(col.len() as u32);
        }
        Self {
            instances,
            rows_per_instance: rows,
            cols,
            row_ptr,
            col,
            val,
        }
    }

    pub fn upload<B: Backend<f32>>(&self, bk: &B) -> Csr<B::Idx, B::Buf> {
        Csr {
            instances: self.instances,
            rows_per_instance: self.rows_per_instance,
            cols: self.cols,
            row_ptr: bk.upload_idx(&self.row_ptr).unwrap(),
            col: bk.upload_idx(&self.col).unwrap(),
            val: bk.upload(&self.val).unwrap(),
            nnz: self.col.len(),
        }
    }
}

fn entries<'a>(
    x: &'a Csr<Vec<u32>, Vec<f32>>,
    row: usize,
) -> impl Iterator<Item = (usize, f32)> + 'a {
    let (lo, hi) = (x.row_ptr[row] as usize, x.row_ptr[row + 1] as usize);
    (lo..hi).map(move |e| (x.col[e] as usize, x.val[e]))
}

fn at(v: View, k: usize) -> usize {
    v.off + k * v.stride
}

impl Backend<f32> for Naive {
    type Buf = Vec<f32>;
    type Idx = Vec<u32>;

    fn name(&self) -> &'static str {
        "naive"
    }
    fn parallel_instances(&self) -> bool {
        false
    }
    fn zeros(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }
    fn upload(&self, host: &[f32]) -> Result<Vec<f32>> {
        Ok(host.to_vec())
    }
    fn upload_idx(&self, host: &[u32]) -> Result<Vec<u32>> {
        Ok(host.to_vec())
    }
    fn write(&self, dst: &mut Vec<f32>, host: &[f32]) -> Result<()> {
        *dst = host.to_vec();
        Ok(())
    }
    fn write_idx(&self, dst: &mut Vec<u32>, host: &[u32]) -> Result<()> {
        *dst = host.to_vec();
        Ok(())
    }
    fn read(&self, src: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(src.clone())
    }
    fn len(&self, buf: &Vec<f32>) -> usize {
        buf.len()
    }
    fn fill(&self, buf: &mut Vec<f32>, value: f32) -> Result<()> {
        buf.iter_mut().for_each(|x| *x = value);
        Ok(())
    }

    fn gemm(&self, g: &Gemm<f32>, a: &Vec<f32>, b: &Vec<f32>, c: &mut Vec<f32>) -> Result<()> {
        let (m, n, k) = (g.m, g.n, g.k);
        for z in 0..g.batch {
            let (ab, bb, cb) = (at(g.a.view, z), at(g.b.view, z), at(g.c, z));
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f64;
                    for p in 0..k {
                        let av = if g.a.trans {
                            a[ab + p * m + i]
                        } else {
                            a[ab + i * k + p]
                        };
                        let bv = if g.b.trans {
                            b[bb + j * k + p]
                        } else {
                            b[bb + p * n + j]
                        };
                        s += av as f64 * bv as f64;
                    }
                    let cv = &mut c[cb + i * n + j];
                    let prior = if g.beta == 0.0 {
                        0.0
                    } else {
                        g.beta as f64 * *cv as f64
                    };
                    *cv = (g.alpha as f64 * s + prior) as f32;
                }
            }
        }
        Ok(())
    }

    fn sparse_gather(
        &self,
        s: &SparseSpec<f32>,
        x: &Csr<Vec<u32>, Vec<f32>>,
        table: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        let w = s.width;
        for row in 0..x.instances * x.rows_per_instance {
            let base = at(s.t, row / x.rows_per_instance);
            for j in 0..w {
                let prior = if s.beta == 0.0 {
                    0.0
                } else {
                    s.beta as f64 * y[row * w + j] as f64
                };
                let sum: f64 = entries(x, row)
                    .map(|(f, v)| {
                        v as f64 * table[base + f * s.t_row_stride + j * s.t_col_stride] as f64
                    })
                    .sum();
                y[row * w + j] = (prior + sum) as f32;
            }
        }
        Ok(())
    }

    fn sparse_scatter(
        &self,
        s: &SparseSpec<f32>,
        x: &Csr<Vec<u32>, Vec<f32>>,
        y: &Vec<f32>,
        table: &mut Vec<f32>,
    ) -> Result<()> {
        let (w, bsz) = (s.width, x.rows_per_instance);
        for k in 0..x.instances {
            let base = at(s.t, k);
            for f in 0..x.cols {
                for j in 0..w {
                    let mut sum = 0.0f64;
                    for b in 0..bsz {
                        let row = k * bsz + b;
                        for (c, v) in entries(x, row) {
                            if c == f {
                                sum += v as f64 * y[row * w + j] as f64;
                            }
                        }
                    }
                    let t = &mut table[base + f * s.t_row_stride + j * s.t_col_stride];
                    *t = (*t as f64 + sum) as f32;
                }
            }
        }
        Ok(())
    }

    fn add_bias(
        &self,
        rows: usize,
        width: usize,
        bias: &Vec<f32>,
        bias_view: View,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        for (r, yr) in y.chunks_exact_mut(width).enumerate() {
            let base = at(bias_view, r / rows);
            for (j, v) in yr.iter_mut().enumerate() {
                *v += bias[base + j];
            }
        }
        Ok(())
    }

    fn col_sum(
        &self,
        rows: usize,
        width: usize,
        y: &Vec<f32>,
        out: &mut Vec<f32>,
        out_view: View,
    ) -> Result<()> {
        for k in 0..y.len() / (rows * width) {
            for j in 0..width {
                let s: f64 = (0..rows)
                    .map(|b| y[(k * rows + b) * width + j] as f64)
                    .sum();
                out[at(out_view, k) + j] = s as f32;
            }
        }
        Ok(())
    }

    fn relu(&self, pre: &Vec<f32>, h: &mut Vec<f32>) -> Result<()> {
        for (h, &p) in h.iter_mut().zip(pre) {
            *h = if p > 0.0 { p } else { 0.0 };
        }
        Ok(())
    }

    fn relu_mask(&self, pre: &Vec<f32>, grad: &mut Vec<f32>) -> Result<()> {
        for (g, &p) in grad.iter_mut().zip(pre) {
            if p <= 0.0 {
                *g = 0.0;
            }
        }
        Ok(())
    }

    fn axpy(&self, alpha: f32, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = (*y as f64 + alpha as f64 * x as f64) as f32;
        }
        Ok(())
    }

    fn loss(
        &self,
        spec: &LossSpec<f32>,
        out: &Vec<f32>,
        y: &Csr<Vec<u32>, Vec<f32>>,
        importance: &Vec<f32>,
        row_loss: &mut Vec<f32>,
        mut dout: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        let f = y.cols;
        let scale = spec.scale as f64;
        for row in 0..y.instances * y.rows_per_instance {
            let mut label = vec![0.0f64; f];
            for (c, v) in entries(y, row) {
                label[c] = v as f64;
            }
            let mut acc = 0.0f64;
            for c in 0..f {
                let e = out[row * f + c] as f64 - label[c];
                let w = importance[c] as f64;
                let (l, g) = match spec.kind {
                    LossKind::L2 => (e * e, 2.0 * e),
                    LossKind::L1 => (
                        e.abs(),
                        if e > 0.0 {
                            1.0
                        } else if e < 0.0 {
                            -1.0
                        } else {
                            0.0
                        },
                    ),
                };
                acc += w * l;
                if let Some(d) = dout.as_deref_mut() {
                    d[row * f + c] = (scale * w * g) as f32;
                }
            }
            row_loss[row] = (scale * acc) as f32;
        }
        Ok(())
    }

    fn adam(
        &self,
        s: &AdamSpec<f32>,
        params: &mut Vec<f32>,
        grads: &Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
    ) -> Result<()> {
        let f = |x: f32| x as f64;
        for i in 0..params.len() {
            let g = f(grads[i]);
            let mi = f(s.beta1) * f(m[i]) + (1.0 - f(s.beta1)) * g;
            let vi = f(s.beta2) * f(v[i]) + (1.0 - f(s.beta2)) * g * g;
            let p = f(params[i]) * (1.0 - f(s.lr) * f(s.weight_decay));
            let m_hat = mi / f(s.bias_correction1);
            let v_hat = vi / f(s.bias_correction2);
            params[i] = (p - f(s.lr) * m_hat / (v_hat.sqrt() + f(s.eps))) as f32;
            m[i] = mi as f32;
            v[i] = vi as f32;
        }
        Ok(())
    }
}
