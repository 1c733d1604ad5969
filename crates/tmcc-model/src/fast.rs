//! The fast path: forward and backward of all `K` instances through the kernel backend,
//! exploiting the sparse `x` and the fixed embedding. Same maths as [`crate::reference`];
//! only the order of the sums differs.
//!
//! With an embedding, the `B×D` products are never formed. Per step, per instance:
//!
//! ```text
//! Aᵀ = W_Eᵀ W1ᵀ   (F×H, F·D·H)        pre = x Aᵀ + b1   (sparse gather, H per active x)
//! C  = W_Eᵀ W2    (F×H; tied: C = Aᵀ)  c = W_Eᵀ b2       (F)
//! out = h Cᵀ + c + x R                  (B·H·F, then sparse gather of R rows)
//! dC = doutᵀ h, dc = Σ_b dout, dh = dout C, dpre = dh ⊙ [pre > 0], dAᵀ = xᵀ dpre (scatter)
//! dW1 = (dAᵀ [+ dC if tied])ᵀ W_Eᵀ,  dW2 = W_E dC,  db2 = W_E dc,  db1 = Σ_b dpre
//! ```
//!
//! About `F·D·H·5 + B·F·H·3` multiply-adds per step instead of `B·D·H·4 + …`. Without an
//! embedding, `W1` itself is the gather table and `W2` the product's right operand.

use tmcc_kernels::{AdamSpec, Backend, Csr, Gemm, LossKind, LossSpec, Operand, SparseSpec, View};

use crate::batch::HostBatch;
use crate::config::{LossName, OutAct};
use crate::model::{Float, Model};
use crate::Error;

/// `C ← op(A)·op(B)` for each of `batch` instances (`op(A)`: `m×k`, `op(B)`: `k×n`).
#[allow(clippy::too_many_arguments)]
fn mm<T: Float>(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    b: Operand,
    c: View,
) -> Gemm<T> {
    Gemm {
        batch,
        m,
        n,
        k,
        alpha: T::one(),
        beta: T::zero(),
        a,
        b,
        c,
    }
}

/// The per-batch-size activations and the uploaded batch.
pub struct Workspace<T: Float, Bk: Backend<T>> {
    pub rows: usize,
    pub x: Csr<Bk::Idx, Bk::Buf>,
    pub pre: Bk::Buf,
    pub h: Bk::Buf,
    /// Output before the output activation.
    pub z: Bk::Buf,
    /// Output after a ReLU output activation (unused with identity).
    pub out_relu: Bk::Buf,
    pub dout: Bk::Buf,
    pub dh: Bk::Buf,
    pub row_loss: Bk::Buf,
}

/// `K` instances living on a backend: parameters, gradients, Adam moments, the fixed
/// tensors, and the weight products of the fast path.
pub struct FastModel<T: Float, Bk: Backend<T>> {
    pub bk: Bk,
    pub k: usize,
    pub f: usize,
    pub h: usize,
    pub d: usize,
    pub p_len: usize,
    off_w1: usize,
    off_b1: Option<usize>,
    off_w2: Option<usize>,
    off_b2: Option<usize>,
    embedded: bool,
    out_relu: bool,
    loss: LossSpec<T>,
    pub params: Bk::Buf,
    pub grads: Bk::Buf,
    pub adam_m: Bk::Buf,
    pub adam_v: Bk::Buf,
    embed: Option<Bk::Buf>,
    resid: Option<Bk::Buf>,
    importance: Bk::Buf,
    // Weight products (embedding variants): Aᵀ, C, c and their gradients.
    a_t: Bk::Buf,
    c_mat: Bk::Buf,
    c_vec: Bk::Buf,
    d_a_t: Bk::Buf,
    d_c_mat: Bk::Buf,
    d_c_vec: Bk::Buf,
}

impl<T: Float, Bk: Backend<T>> FastModel<T, Bk> {
    /// Uploads `model` to `bk`; Adam moments start at zero.
    pub fn new(bk: Bk, model: &Model<T>) -> Result<Self, Error> {
        let cfg = &model.cfg;
        let (k, f, h, d) = (cfg.instances, cfg.n_feat, cfg.n_hidden, cfg.d_in());
        let layout = &model.layout;
        let p_len = layout.len;
        let embedded = model.embed.is_some();
        let resid = match cfg.variant.has_residual() {
            true => {
                let r: Vec<T> = (0..k)
                    .flat_map(|i| model.residual_table(i).expect("residual variant"))
                    .collect();
                Some(bk.upload(&r)?)
            }
            false => None,
        };
        let importance: Vec<T> = (0..f).map(|i| T::from_f64(cfg.importance_of(i))).collect();
        let prod = |n: usize| bk.zeros(if embedded { k * n } else { 0 });
        Ok(Self {
            k,
            f,
            h,
            d,
            p_len,
            off_w1: layout.offset("W1"),
            off_b1: layout.get("b1").map(|s| s.offset),
            off_w2: layout.get("W2").map(|s| s.offset),
            off_b2: layout.get("b2").map(|s| s.offset),
            embedded,
            out_relu: cfg.out_act == OutAct::Relu,
            loss: LossSpec {
                kind: match cfg.loss {
                    LossName::L2 => LossKind::L2,
                    LossName::L1 => LossKind::L1,
                },
                res_factor: T::from_f64(cfg.res_factor()),
                scale: T::one(),
            },
            params: bk.upload(&model.params)?,
            grads: bk.zeros(k * p_len)?,
            adam_m: bk.zeros(k * p_len)?,
            adam_v: bk.zeros(k * p_len)?,
            embed: model.embed.as_ref().map(|e| bk.upload(e)).transpose()?,
            resid,
            importance: bk.upload(&importance)?,
            a_t: prod(f * h)?,
            c_mat: prod(f * h)?,
            c_vec: prod(f)?,
            d_a_t: prod(f * h)?,
            d_c_mat: prod(f * h)?,
            d_c_vec: prod(f)?,
            bk,
        })
    }

    /// Activations for batches of `rows` samples per instance.
    pub fn workspace(&self, rows: usize) -> Result<Workspace<T, Bk>, Error> {
        let (k, bk) = (self.k, &self.bk);
        Ok(Workspace {
            rows,
            x: Csr {
                instances: k,
                rows_per_instance: rows,
                cols: self.f,
                row_ptr: bk.upload_idx(&vec![0; k * rows + 1])?,
                col: bk.upload_idx(&[])?,
                val: bk.upload(&[])?,
                nnz: 0,
            },
            pre: bk.zeros(k * rows * self.h)?,
            h: bk.zeros(k * rows * self.h)?,
            z: bk.zeros(k * rows * self.f)?,
            out_relu: bk.zeros(if self.out_relu { k * rows * self.f } else { 0 })?,
            dout: bk.zeros(k * rows * self.f)?,
            dh: bk.zeros(k * rows * self.h)?,
            row_loss: bk.zeros(k * rows)?,
        })
    }

    /// Copies a host batch (`K` instances × `ws.rows` samples) into the workspace.
    pub fn load_batch(&self, ws: &mut Workspace<T, Bk>, x: &HostBatch<T>) -> Result<(), Error> {
        if x.instances != self.k || x.rows_per_instance != ws.rows || x.n_feat != self.f {
            return Err(Error::Shape(format!(
                "batch is {}×{}×{}, workspace wants {}×{}×{}",
                x.instances, x.rows_per_instance, x.n_feat, self.k, ws.rows, self.f
            )));
        }
        self.bk.write_idx(&mut ws.x.row_ptr, &x.row_ptr)?;
        self.bk.write_idx(&mut ws.x.col, &x.col)?;
        self.bk.write(&mut ws.x.val, &x.val)?;
        ws.x.nnz = x.nnz();
        Ok(())
    }

    /// The final output buffer (after the output activation).
    pub fn output<'a>(&self, ws: &'a Workspace<T, Bk>) -> &'a Bk::Buf {
        if self.out_relu {
            &ws.out_relu
        } else {
            &ws.z
        }
    }

    /// Forward pass of the loaded batch; per-sample losses scaled by `loss_scale` land in
    /// `ws.row_loss`, and with `with_grad` also `∂L/∂out` in `ws.dout`.
    pub fn forward(
        &mut self,
        ws: &mut Workspace<T, Bk>,
        loss_scale: T,
        with_grad: bool,
    ) -> Result<(), Error> {
        let (f, h, d, rows) = (self.f, self.h, self.d, ws.rows);
        let packed = View::packed;
        let p_len = self.p_len;
        let pv = |off| View::new(off, p_len);
        // The weight products (embedding variants).
        if let Some(e) = &self.embed {
            let e_t = Operand::t(packed(d * f));
            let g = mm(
                self.k,
                f,
                h,
                d,
                e_t,
                Operand::t(pv(self.off_w1)),
                packed(f * h),
            );
            self.bk.gemm(&g, e, &self.params, &mut self.a_t)?;
            if let Some(off_w2) = self.off_w2 {
                let g = mm(self.k, f, h, d, e_t, Operand::n(pv(off_w2)), packed(f * h));
                self.bk.gemm(&g, e, &self.params, &mut self.c_mat)?;
            }
            if let Some(off_b2) = self.off_b2 {
                let g = mm(self.k, f, 1, d, e_t, Operand::n(pv(off_b2)), packed(f));
                self.bk.gemm(&g, e, &self.params, &mut self.c_vec)?;
            }
        }
        // pre = x·Aᵀ (+ b1), h = ReLU(pre).
        let gather = |width, t: View, t_row_stride, t_col_stride, beta| SparseSpec {
            width,
            y: packed(rows * width),
            t,
            t_row_stride,
            t_col_stride,
            beta,
        };
        if self.embedded {
            let s = gather(h, packed(f * h), h, 1, T::zero());
            self.bk.sparse_gather(&s, &ws.x, &self.a_t, &mut ws.pre)?;
        } else {
            let s = gather(h, pv(self.off_w1), 1, d, T::zero());
            self.bk
                .sparse_gather(&s, &ws.x, &self.params, &mut ws.pre)?;
        }
        if let Some(off) = self.off_b1 {
            self.bk
                .add_bias(rows, h, &self.params, pv(off), &mut ws.pre)?;
        }
        self.bk.relu(&ws.pre, &mut ws.h)?;
        // z = h·Cᵀ + c + x·R.
        let h_op = Operand::n(packed(rows * h));
        match (self.embedded, self.off_w2) {
            (true, Some(_)) => {
                let g = mm(
                    self.k,
                    rows,
                    f,
                    h,
                    h_op,
                    Operand::t(packed(f * h)),
                    packed(rows * f),
                );
                self.bk.gemm(&g, &ws.h, &self.c_mat, &mut ws.z)?;
            }
            (true, None) => {
                let g = mm(
                    self.k,
                    rows,
                    f,
                    h,
                    h_op,
                    Operand::t(packed(f * h)),
                    packed(rows * f),
                );
                self.bk.gemm(&g, &ws.h, &self.a_t, &mut ws.z)?;
            }
            (false, Some(off_w2)) => {
                let g = mm(
                    self.k,
                    rows,
                    f,
                    h,
                    h_op,
                    Operand::t(pv(off_w2)),
                    packed(rows * f),
                );
                self.bk.gemm(&g, &ws.h, &self.params, &mut ws.z)?;
            }
            (false, None) => {
                let g = mm(
                    self.k,
                    rows,
                    f,
                    h,
                    h_op,
                    Operand::n(pv(self.off_w1)),
                    packed(rows * f),
                );
                self.bk.gemm(&g, &ws.h, &self.params, &mut ws.z)?;
            }
        }
        match (self.embedded, self.off_b2) {
            (true, Some(_)) => self
                .bk
                .add_bias(rows, f, &self.c_vec, packed(f), &mut ws.z)?,
            (false, Some(off)) => self
                .bk
                .add_bias(rows, f, &self.params, pv(off), &mut ws.z)?,
            _ => {}
        }
        if let Some(r) = &self.resid {
            let s = gather(f, packed(f * f), f, 1, T::one());
            self.bk.sparse_gather(&s, &ws.x, r, &mut ws.z)?;
        }
        if self.out_relu {
            self.bk.relu(&ws.z, &mut ws.out_relu)?;
        }
        // Loss and ∂L/∂out.
        let spec = LossSpec {
            scale: loss_scale,
            ..self.loss
        };
        let out = if self.out_relu { &ws.out_relu } else { &ws.z };
        let dout = with_grad.then_some(&mut ws.dout);
        self.bk
            .loss(&spec, out, &ws.x, &self.importance, &mut ws.row_loss, dout)?;
        if with_grad && self.out_relu {
            self.bk.relu_mask(&ws.z, &mut ws.dout)?;
        }
        Ok(())
    }

    /// Backward pass after `forward(.., with_grad = true)`: overwrites `self.grads`.
    pub fn backward(&mut self, ws: &mut Workspace<T, Bk>) -> Result<(), Error> {
        let (f, h, d, rows) = (self.f, self.h, self.d, ws.rows);
        let packed = View::packed;
        let p_len = self.p_len;
        let pv = |off| View::new(off, p_len);
        let bk = &self.bk;
        bk.fill(&mut self.grads, T::zero())?;
        let dout_t = Operand::t(packed(rows * f));
        let h_n = Operand::n(packed(rows * h));
        // dC = doutᵀ·h (F×H), dc = Σ_b dout.
        if self.embedded {
            let g = mm(self.k, f, h, rows, dout_t, h_n, packed(f * h));
            bk.gemm(&g, &ws.dout, &ws.h, &mut self.d_c_mat)?;
            if self.off_b2.is_some() {
                bk.col_sum(rows, f, &ws.dout, &mut self.d_c_vec, packed(f))?;
            }
        } else {
            match self.off_w2 {
                Some(off_w2) => {
                    let g = mm(self.k, f, h, rows, dout_t, h_n, pv(off_w2));
                    bk.gemm(&g, &ws.dout, &ws.h, &mut self.grads)?;
                }
                None => {
                    // Tied: W2 = W1ᵀ, so dW1 (H×F) starts as hᵀ·dout.
                    let g = mm(
                        self.k,
                        h,
                        f,
                        rows,
                        Operand::t(packed(rows * h)),
                        Operand::n(packed(rows * f)),
                        pv(self.off_w1),
                    );
                    bk.gemm(&g, &ws.h, &ws.dout, &mut self.grads)?;
                }
            }
            if let Some(off) = self.off_b2 {
                bk.col_sum(rows, f, &ws.dout, &mut self.grads, pv(off))?;
            }
        }
        // dh = dout·C, then the ReLU mask: dpre.
        let dout_n = Operand::n(packed(rows * f));
        let g_dh = |b: Operand| mm(self.k, rows, h, f, dout_n, b, packed(rows * h));
        match (self.embedded, self.off_w2) {
            (true, Some(_)) => bk.gemm(
                &g_dh(Operand::n(packed(f * h))),
                &ws.dout,
                &self.c_mat,
                &mut ws.dh,
            )?,
            (true, None) => bk.gemm(
                &g_dh(Operand::n(packed(f * h))),
                &ws.dout,
                &self.a_t,
                &mut ws.dh,
            )?,
            (false, Some(off_w2)) => bk.gemm(
                &g_dh(Operand::n(pv(off_w2))),
                &ws.dout,
                &self.params,
                &mut ws.dh,
            )?,
            (false, None) => bk.gemm(
                &g_dh(Operand::t(pv(self.off_w1))),
                &ws.dout,
                &self.params,
                &mut ws.dh,
            )?,
        }
        bk.relu_mask(&ws.pre, &mut ws.dh)?;
        if let Some(off) = self.off_b1 {
            bk.col_sum(rows, h, &ws.dh, &mut self.grads, pv(off))?;
        }
        // dAᵀ = xᵀ·dpre (scatter), then back through the embedding.
        let scatter = |t: View, t_row_stride, t_col_stride| SparseSpec {
            width: h,
            y: packed(rows * h),
            t,
            t_row_stride,
            t_col_stride,
            beta: T::zero(),
        };
        if let Some(e) = &self.embed {
            bk.fill(&mut self.d_a_t, T::zero())?;
            bk.sparse_scatter(
                &scatter(packed(f * h), h, 1),
                &ws.x,
                &ws.dh,
                &mut self.d_a_t,
            )?;
            if self.off_w2.is_none() {
                bk.axpy(T::one(), &self.d_c_mat, &mut self.d_a_t)?;
            }
            // dW1 (H×D) = dAᵀᵀ·W_Eᵀ.
            let g = mm(
                self.k,
                h,
                d,
                f,
                Operand::t(packed(f * h)),
                Operand::t(packed(d * f)),
                pv(self.off_w1),
            );
            bk.gemm(&g, &self.d_a_t, e, &mut self.grads)?;
            if let Some(off_w2) = self.off_w2 {
                // dW2 (D×H) = W_E·dC.
                let g = mm(
                    self.k,
                    d,
                    h,
                    f,
                    Operand::n(packed(d * f)),
                    Operand::n(packed(f * h)),
                    pv(off_w2),
                );
                bk.gemm(&g, e, &self.d_c_mat, &mut self.grads)?;
            }
            if let Some(off_b2) = self.off_b2 {
                // db2 (D) = W_E·dc.
                let g = mm(
                    self.k,
                    d,
                    1,
                    f,
                    Operand::n(packed(d * f)),
                    Operand::n(packed(f)),
                    pv(off_b2),
                );
                bk.gemm(&g, e, &self.d_c_vec, &mut self.grads)?;
            }
        } else {
            let s = scatter(pv(self.off_w1), 1, d);
            bk.sparse_scatter(&s, &ws.x, &ws.dh, &mut self.grads)?;
        }
        Ok(())
    }

    /// One Adam/AdamW update of every instance with the current gradients.
    pub fn adam_step(&mut self, spec: &AdamSpec<T>) -> Result<(), Error> {
        self.bk.adam(
            spec,
            &mut self.params,
            &self.grads,
            &mut self.adam_m,
            &mut self.adam_v,
        )?;
        Ok(())
    }

    /// Downloads the parameters.
    pub fn read_params(&self) -> Result<Vec<T>, Error> {
        Ok(self.bk.read(&self.params)?)
    }

    pub fn read_grads(&self) -> Result<Vec<T>, Error> {
        Ok(self.bk.read(&self.grads)?)
    }

    /// Downloads the Adam moments `(m, v)`.
    pub fn read_moments(&self) -> Result<(Vec<T>, Vec<T>), Error> {
        Ok((self.bk.read(&self.adam_m)?, self.bk.read(&self.adam_v)?))
    }

    /// Overwrites parameters and Adam moments (resume, transplant).
    pub fn write_state(&mut self, params: &[T], m: &[T], v: &[T]) -> Result<(), Error> {
        let n = self.k * self.p_len;
        if params.len() != n || m.len() != n || v.len() != n {
            return Err(Error::Shape(format!(
                "state must have {n} elements per tensor"
            )));
        }
        self.bk.write(&mut self.params, params)?;
        self.bk.write(&mut self.adam_m, m)?;
        self.bk.write(&mut self.adam_v, v)?;
        Ok(())
    }
}
