//! The fast path: forward and backward of `K` instances through the kernel backend,
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
//! About `F·D·H·4 + B·F·H·3` multiply-adds per step instead of `B·D·H·4 + …`. Without an
//! embedding, `Aᵀ = W1ᵀ` (a product with `I_H`, so that the gather and the scatter of `x`
//! read and write contiguous rows) and `C = W2`.
//!
//! ## The gradient in hidden space (L2 loss, identity output)
//!
//! With the L2 loss and no output activation, `dout = σ·(z − y)·diag(imp)` (`σ = 2·scale`)
//! is linear in `z = h Cᵀ + 1cᵀ + x R`, so the two products with `dout` can be formed
//! without `out` or `dout` ever existing (`y` = labels, sparse like `x`):
//!
//! ```text
//! Ĉ = σ·diag(imp)·C  (F×H)            M = Cᵀ Ĉ  (H×H)       P = R Ĉ  (F×H)
//! dh = h M + 1·(Ĉᵀc)ᵀ + x P − y Ĉ                               (B·H·H + sparse gathers)
//! dC = σ·diag(imp)·[C (hᵀh) + c (1ᵀh) + Rᵀ (xᵀh) − yᵀh]          (B·H·H + F-sized products)
//! dc = σ·diag(imp)·[C (1ᵀh) + B·c + Rᵀ (xᵀ1) − yᵀ1]
//! ```
//!
//! That is `2·B·H² + O(F²H)` multiply-adds where the plain form needs `3·B·F·H` plus a
//! pass over `B×F` for the loss. [`FastModel::train_step`] takes it on every step where it
//! applies (so a run's weights do not depend on which steps log their loss); a step that
//! reports its loss also runs the plain forward pass for it. [`FastModel::forward`] and
//! [`backward`] are the plain path. Both agree with the f64 gradient to ~1e-6 in f32
//! (tests below), at initialization and after training.
//!
//! ## Instances in shards
//!
//! The state (parameters, gradients, Adam moments, `W_E`, `R`) lives in shards of
//! consecutive instances, each in its own buffers; every operation covers one shard.
//! [`FastModel::new`] makes one shard of all `K` instances (one launch per operation on a
//! device). [`FastModel::new_sharded`] cuts them finer: the CPU trainer uses one instance
//! per shard and runs whole shard steps (batch, forward, backward, Adam) side by side on
//! rayon's threads ([`FastModel::train_step`]), each with its own [`Workspace`]: an
//! instance's working set stays in cache for its whole step, the activations (and
//! gradients) of only a few instances exist at once, and no operation waits on another
//! thread. Results are bit-identical whatever the shard size and thread count.
//!
//! [`backward`]: FastModel::backward

use std::sync::Mutex;

use rayon::prelude::*;
use tmcc_kernels::{AdamSpec, Backend, Csr, Gemm, LossKind, LossSpec, Operand, SparseSpec, View};

use crate::batch::HostBatch;
use crate::config::{LossName, OutAct};
use crate::layout::Param;
use crate::model::{Float, Model};
use crate::Error;

/// `C ← α·op(A)·op(B) + β·C` for each of `batch` instances (`op(A)`: `m×k`, `op(B)`: `k×n`).
#[allow(clippy::too_many_arguments)]
fn gemm<T: Float>(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: Operand,
    b: Operand,
    c: View,
    beta: T,
) -> Gemm<T> {
    Gemm {
        batch,
        m,
        n,
        k,
        alpha,
        beta,
        a,
        b,
        c,
    }
}

/// `C ← op(A)·op(B)`.
fn mm<T: Float>(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    b: Operand,
    c: View,
) -> Gemm<T> {
    gemm(batch, m, n, k, T::one(), a, b, c, T::zero())
}

/// `op(X)ᵀ` as an operand.
fn tr(op: Operand) -> Operand {
    Operand {
        view: op.view,
        trans: !op.trans,
    }
}

/// A gather/scatter spec over packed `rows×width` activations.
fn sparse<T: Float>(
    rows: usize,
    width: usize,
    t: View,
    t_row_stride: usize,
    t_col_stride: usize,
    beta: T,
) -> SparseSpec<T> {
    SparseSpec {
        width,
        y: View::packed(rows * width),
        t,
        t_row_stride,
        t_col_stride,
        beta,
    }
}

/// The embedding products of the forward pass: `Aᵀ`, `C` (`F×H`) and `c` (`F`).
struct Feature<B> {
    a_t: B,
    c_mat: B,
    c_vec: B,
}

/// Gradient-side products: `dAᵀ`, `dC`, `dc`.
struct Grad<B> {
    d_a_t: B,
    d_c_mat: B,
    d_c_vec: B,
}

/// The tables of the hidden-space gradient (module documentation) and a column of ones.
struct HiddenTables<B> {
    c_hat: B,
    m_hh: B,
    p_tab: B,
    g_hh: B,
    inner: B,
    xh: B,
    hsum: B,
    xsum: B,
    inner_c: B,
    mc: B,
    ones: B,
}

/// The activations of a shard (`first .. first + instances`) for batches of `rows`
/// samples, the uploaded batch, and the per-step weight products.
pub struct Workspace<T: Float, Bk: Backend<T>> {
    pub rows: usize,
    /// The first instance of the shard.
    pub first: usize,
    /// Instances in the shard.
    pub instances: usize,
    pub x: Csr<Bk::Idx, Bk::Buf>,
    /// The negated labels `−y` at the cells of `x` (hidden-space gradient only).
    pub neg_y: Csr<Bk::Idx, Bk::Buf>,
    /// `ReLU(pre)`; `pre` itself only passes through `dh` (`h > 0` exactly where `pre > 0`).
    pub h: Bk::Buf,
    /// Output before the output activation (plain path).
    pub z: Bk::Buf,
    /// Output after a ReLU output activation (unused with identity).
    pub out_relu: Bk::Buf,
    pub dout: Bk::Buf,
    pub dh: Bk::Buf,
    pub row_loss: Bk::Buf,
    /// The gradients of the shard being trained, when the model does not keep them.
    grads: Bk::Buf,
    w: Feature<Bk::Buf>,
    g: Grad<Bk::Buf>,
    hs: Option<HiddenTables<Bk::Buf>>,
    /// Host staging of the shard's CSR offsets (rebased to 0) and label values.
    host_ptr: Vec<u32>,
    host_neg_y: Vec<T>,
}

/// The state of consecutive instances `first .. first + n`, each in its own buffers.
struct Shard<B> {
    first: usize,
    n: usize,
    params: B,
    grads: B,
    adam_m: B,
    adam_v: B,
    embed: Option<B>,
    resid: Option<B>,
}

/// `K` instances living on a backend: parameters, gradients, Adam moments and the fixed
/// tensors, in shards of consecutive instances.
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
    importance: Bk::Buf,
    /// `diag(imp)` (`F×F`), for the hidden-space gradient.
    diag_imp: Option<Bk::Buf>,
    /// `I_H` (`H×H`) without an embedding: `W1ᵀ` and `dW1 = dAᵀᵀ` are products with it, so
    /// that the gather and scatter of `x` run over contiguous rows of `Aᵀ = W1ᵀ`.
    eye_h: Option<Bk::Buf>,
    shards: Vec<Shard<Bk::Buf>>,
    /// Instances per shard (the last may have fewer).
    shard_len: usize,
    /// Whether each shard keeps its gradients; otherwise a shard's step borrows its
    /// workspace's gradient buffer (training: less memory, and no gradient ever leaves
    /// the cache).
    keep_grads: bool,
}

/// Workspaces for the shards of a [`FastModel::train_step`]: taken by a shard's task,
/// returned after; a new one is made if all are in use (only when rayon nests tasks).
pub struct WorkspacePool<T: Float, Bk: Backend<T>> {
    rows: usize,
    free: Mutex<Vec<Workspace<T, Bk>>>,
}

impl<T: Float, Bk: Backend<T>> WorkspacePool<T, Bk> {
    fn take(
        &self,
        fast: &FastModel<T, Bk>,
        first: usize,
        n: usize,
    ) -> Result<Workspace<T, Bk>, Error> {
        let found = {
            let mut free = self.free.lock().expect("workspace pool poisoned");
            free.iter()
                .position(|w| w.instances == n)
                .map(|i| free.swap_remove(i))
        };
        let mut ws = match found {
            Some(ws) => ws,
            None => fast.workspace_for(self.rows, first, n, true)?,
        };
        ws.first = first;
        Ok(ws)
    }

    fn put(&self, ws: Workspace<T, Bk>) {
        self.free.lock().expect("workspace pool poisoned").push(ws);
    }

    /// Workspaces currently in the pool.
    pub fn len(&self) -> usize {
        self.free.lock().expect("workspace pool poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `C` (`F×H`) as a gemm operand and its buffer: `C = W_EᵀW2` (or `Aᵀ` when tied) with an
/// embedding, else `W2` (`D×H = F×H`), or `W1ᵀ` when tied (`W1` stored `H×F`).
fn c_operand<'a, B>(
    w: &'a Feature<B>,
    params: &'a B,
    embedded: bool,
    off_w2: Option<usize>,
    off_w1: usize,
    fh: usize,
    p_len: usize,
) -> (&'a B, Operand) {
    match (embedded, off_w2) {
        (true, Some(_)) => (&w.c_mat, Operand::n(View::packed(fh))),
        (true, None) => (&w.a_t, Operand::n(View::packed(fh))),
        (false, Some(off)) => (params, Operand::n(View::new(off, p_len))),
        (false, None) => (params, Operand::t(View::new(off_w1, p_len))),
    }
}

impl<T: Float, Bk: Backend<T>> FastModel<T, Bk> {
    /// Uploads `model` to `bk` as one shard of all instances; Adam moments start at zero.
    pub fn new(bk: Bk, model: &Model<T>) -> Result<Self, Error> {
        let k = model.cfg.instances;
        Self::new_sharded(bk, model, k, true)
    }

    /// Uploads `model` to `bk` in shards of `shard_len` instances (the last may hold
    /// fewer); Adam moments start at zero. Without `keep_grads` the gradients only exist
    /// inside [`train_step`](Self::train_step), in its workspaces ([`read_grads`] fails).
    ///
    /// [`read_grads`]: Self::read_grads
    pub fn new_sharded(
        bk: Bk,
        model: &Model<T>,
        shard_len: usize,
        keep_grads: bool,
    ) -> Result<Self, Error> {
        let cfg = &model.cfg;
        let (k, f, h, d) = (cfg.instances, cfg.n_feat, cfg.n_hidden, cfg.d_in());
        let layout = &model.layout;
        let p_len = layout.len;
        let shard_len = shard_len.clamp(1, k.max(1));
        let importance: Vec<T> = (0..f).map(|i| T::from_f64(cfg.importance_of(i))).collect();
        let mut shards = Vec::new();
        let mut first = 0;
        while first < k {
            let n = shard_len.min(k - first);
            let range = first * p_len..(first + n) * p_len;
            let embed = match &model.embed {
                Some(e) => Some(bk.upload(&e[first * d * f..(first + n) * d * f])?),
                None => None,
            };
            let resid = match cfg.variant.has_residual() {
                true => {
                    let r: Vec<T> = (first..first + n)
                        .flat_map(|i| model.residual_table(i).expect("residual variant"))
                        .collect();
                    Some(bk.upload(&r)?)
                }
                false => None,
            };
            shards.push(Shard {
                first,
                n,
                params: bk.upload(&model.params[range])?,
                grads: bk.zeros(if keep_grads { n * p_len } else { 0 })?,
                adam_m: bk.zeros(n * p_len)?,
                adam_v: bk.zeros(n * p_len)?,
                embed,
                resid,
            });
            first += n;
        }
        let loss = LossSpec {
            kind: match cfg.loss {
                LossName::L2 => LossKind::L2,
                LossName::L1 => LossKind::L1,
            },
            res_factor: T::from_f64(cfg.res_factor()),
            scale: T::one(),
        };
        let out_relu = cfg.out_act == OutAct::Relu;
        let diag_imp = if loss.kind == LossKind::L2 && !out_relu {
            let mut diag = vec![T::zero(); f * f];
            for (i, &w) in importance.iter().enumerate() {
                diag[i * f + i] = w;
            }
            Some(bk.upload(&diag)?)
        } else {
            None
        };
        let eye_h = if model.embed.is_none() {
            let mut eye = vec![T::zero(); h * h];
            for i in 0..h {
                eye[i * h + i] = T::one();
            }
            Some(bk.upload(&eye)?)
        } else {
            None
        };
        Ok(Self {
            eye_h,
            k,
            f,
            h,
            d,
            p_len,
            off_w1: layout.offset(Param::W1),
            off_b1: layout.get(Param::B1).map(|s| s.offset),
            off_w2: layout.get(Param::W2).map(|s| s.offset),
            off_b2: layout.get(Param::B2).map(|s| s.offset),
            embedded: model.embed.is_some(),
            out_relu,
            loss,
            importance: bk.upload(&importance)?,
            diag_imp,
            shards,
            shard_len,
            keep_grads,
            bk,
        })
    }

    /// Instances per shard (the last shard may hold fewer).
    pub fn shard_len(&self) -> usize {
        self.shard_len
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Whether training takes the gradient through hidden space (L2 loss, identity output;
    /// module documentation).
    pub fn hidden_space_gradient(&self) -> bool {
        self.diag_imp.is_some()
    }

    /// Activations of all `K` instances for batches of `rows` samples (one shard only).
    pub fn workspace(&self, rows: usize) -> Result<Workspace<T, Bk>, Error> {
        self.workspace_for(rows, 0, self.k, false)
    }

    /// A pool of workspaces for [`train_step`](Self::train_step), one per rayon thread.
    pub fn workspace_pool(&self, rows: usize) -> Result<WorkspacePool<T, Bk>, Error> {
        let threads = if self.parallel_shards() {
            rayon::current_num_threads().min(self.shards.len())
        } else {
            1
        };
        let mut free = Vec::new();
        for _ in 0..threads {
            free.push(self.workspace_for(rows, 0, self.shard_len, true)?);
        }
        if !self.k.is_multiple_of(self.shard_len) {
            let last = self.shards.last().expect("k ≥ 1");
            free.push(self.workspace_for(rows, last.first, last.n, true)?);
        }
        Ok(WorkspacePool {
            rows,
            free: Mutex::new(free),
        })
    }

    fn workspace_for(
        &self,
        rows: usize,
        first: usize,
        instances: usize,
        training: bool,
    ) -> Result<Workspace<T, Bk>, Error> {
        let (n, bk, f, h) = (instances, &self.bk, self.f, self.h);
        let csr = |bk: &Bk| -> Result<Csr<Bk::Idx, Bk::Buf>, Error> {
            Ok(Csr {
                instances: n,
                rows_per_instance: rows,
                cols: f,
                row_ptr: bk.upload_idx(&vec![0; n * rows + 1])?,
                col: bk.upload_idx(&[])?,
                val: bk.upload(&[])?,
                nnz: 0,
            })
        };
        let z = |len: usize| bk.zeros(n * len);
        let hs = if training && self.hidden_space_gradient() {
            Some(self.hidden_tables(rows, n)?)
        } else {
            None
        };
        Ok(Workspace {
            rows,
            first,
            instances: n,
            x: csr(bk)?,
            neg_y: csr(bk)?,
            h: z(rows * h)?,
            z: z(rows * f)?,
            out_relu: z(if self.out_relu { rows * f } else { 0 })?,
            dout: z(rows * f)?,
            dh: z(rows * h)?,
            row_loss: z(rows)?,
            grads: z(if training && !self.keep_grads {
                self.p_len
            } else {
                0
            })?,
            w: Feature {
                a_t: z(f * h)?,
                c_mat: z(if self.embedded { f * h } else { 0 })?,
                c_vec: z(if self.embedded { f } else { 0 })?,
            },
            g: Grad {
                d_a_t: z(f * h)?,
                d_c_mat: z(if self.embedded { f * h } else { 0 })?,
                d_c_vec: z(if self.embedded { f } else { 0 })?,
            },
            hs,
            host_ptr: Vec::new(),
            host_neg_y: Vec::new(),
        })
    }

    fn hidden_tables(&self, rows: usize, n: usize) -> Result<HiddenTables<Bk::Buf>, Error> {
        let (bk, f, h) = (&self.bk, self.f, self.h);
        let z = |len: usize| bk.zeros(n * len);
        Ok(HiddenTables {
            c_hat: z(f * h)?,
            m_hh: z(h * h)?,
            p_tab: z(f * h)?,
            g_hh: z(h * h)?,
            inner: z(f * h)?,
            xh: z(f * h)?,
            hsum: z(h)?,
            xsum: z(f)?,
            inner_c: z(f)?,
            mc: z(h)?,
            ones: bk.upload(&vec![T::one(); (n * rows).max(1)])?,
        })
    }

    /// The shard that starts at `first` (and holds `n` instances, if given).
    fn shard_index(&self, first: usize, n: Option<usize>) -> Result<usize, Error> {
        self.shards
            .iter()
            .position(|s| s.first == first && n.is_none_or(|n| s.n == n))
            .ok_or_else(|| {
                Error::Shape(format!(
                    "no shard of {} instances starts at instance {first} (shards of {})",
                    n.map_or("any number of".into(), |n| n.to_string()),
                    self.shard_len
                ))
            })
    }

    fn ws_shard(&self, ws: &Workspace<T, Bk>) -> Result<usize, Error> {
        self.shard_index(ws.first, Some(ws.instances))
    }

    /// Copies the workspace's shard of a host batch (`K` instances × `ws.rows` samples, or
    /// exactly the shard's instances) into the workspace.
    pub fn load_batch(&self, ws: &mut Workspace<T, Bk>, x: &HostBatch<T>) -> Result<(), Error> {
        self.load(ws, x, false)
    }

    /// As [`load_batch`](Self::load_batch), and also the negated labels when `labels`.
    fn load(&self, ws: &mut Workspace<T, Bk>, x: &HostBatch<T>, labels: bool) -> Result<(), Error> {
        let whole = x.instances == self.k;
        if !(whole || x.instances == ws.instances)
            || x.rows_per_instance != ws.rows
            || x.n_feat != self.f
            || ws.first + ws.instances > self.k
        {
            return Err(Error::Shape(format!(
                "batch is {}×{}×{}, workspace wants {}×{}×{} (instances {}.. of {})",
                x.instances,
                x.rows_per_instance,
                x.n_feat,
                ws.instances,
                ws.rows,
                self.f,
                ws.first,
                self.k
            )));
        }
        let first = if whole { ws.first } else { 0 };
        let (r0, r1) = (first * ws.rows, (first + ws.instances) * ws.rows);
        let (lo, hi) = (x.row_ptr[r0] as usize, x.row_ptr[r1] as usize);
        let ptr = &x.row_ptr[r0..=r1];
        let bk = &self.bk;
        if lo != 0 {
            ws.host_ptr.clear();
            ws.host_ptr.extend(ptr.iter().map(|&p| p - lo as u32));
        }
        let ptr = if lo == 0 { ptr } else { &ws.host_ptr[..] };
        bk.write_idx(&mut ws.x.row_ptr, ptr)?;
        bk.write_idx(&mut ws.x.col, &x.col[lo..hi])?;
        bk.write(&mut ws.x.val, &x.val[lo..hi])?;
        ws.x.nnz = hi - lo;
        if labels {
            let r = self.loss.res_factor;
            ws.host_neg_y.clear();
            ws.host_neg_y
                .extend(x.val[lo..hi].iter().map(|&v| -(v.max(T::zero()) + r * v)));
            bk.write_idx(&mut ws.neg_y.row_ptr, ptr)?;
            bk.write_idx(&mut ws.neg_y.col, &x.col[lo..hi])?;
            bk.write(&mut ws.neg_y.val, &ws.host_neg_y)?;
            ws.neg_y.nnz = hi - lo;
        }
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

    /// View of the parameter tensor at `off`, one block per instance of a shard.
    fn pv(&self, off: usize) -> View {
        View::new(off, self.p_len)
    }

    /// The embedding products `Aᵀ`, `C`, `c` of the shard (embedding variants).
    fn weight_products(&self, sh: &Shard<Bk::Buf>, ws: &mut Workspace<T, Bk>) -> Result<(), Error> {
        let (f, h, d, n) = (self.f, self.h, self.d, sh.n);
        let Some(e) = &sh.embed else {
            // Aᵀ = W1ᵀ·I_H (F×H), contiguous rows for the gather.
            let eye = self.eye_h.as_ref().expect("no embedding");
            let g = mm(
                n,
                f,
                h,
                h,
                Operand::t(self.pv(self.off_w1)),
                Operand::n(View::new(0, 0)),
                View::packed(f * h),
            );
            self.bk.gemm(&g, &sh.params, eye, &mut ws.w.a_t)?;
            return Ok(());
        };
        let e_t = Operand::t(View::packed(d * f));
        let packed = View::packed;
        let g = mm(
            n,
            f,
            h,
            d,
            e_t,
            Operand::t(self.pv(self.off_w1)),
            packed(f * h),
        );
        self.bk.gemm(&g, e, &sh.params, &mut ws.w.a_t)?;
        if let Some(off_w2) = self.off_w2 {
            let g = mm(n, f, h, d, e_t, Operand::n(self.pv(off_w2)), packed(f * h));
            self.bk.gemm(&g, e, &sh.params, &mut ws.w.c_mat)?;
        }
        if let Some(off_b2) = self.off_b2 {
            let g = mm(n, f, 1, d, e_t, Operand::n(self.pv(off_b2)), packed(f));
            self.bk.gemm(&g, e, &sh.params, &mut ws.w.c_vec)?;
        }
        Ok(())
    }

    /// `pre = x·Aᵀ + b1` (in `ws.dh`, which the backward pass overwrites), `h = ReLU(pre)`.
    /// The backward pass masks with `h > 0`, which holds exactly where `pre > 0`.
    fn hidden(&self, sh: &Shard<Bk::Buf>, ws: &mut Workspace<T, Bk>) -> Result<(), Error> {
        let (h, rows) = (self.h, ws.rows);
        let s = sparse(rows, h, View::packed(self.f * h), h, 1, T::zero());
        self.bk.sparse_gather(&s, &ws.x, &ws.w.a_t, &mut ws.dh)?;
        if let Some(off) = self.off_b1 {
            self.bk
                .add_bias(rows, h, &sh.params, self.pv(off), &mut ws.dh)?;
        }
        self.bk.relu(&ws.dh, &mut ws.h)?;
        Ok(())
    }

    /// Forward pass of the loaded batch; per-sample losses scaled by `loss_scale` land in
    /// `ws.row_loss`, and with `with_grad` also `∂L/∂out` in `ws.dout`.
    pub fn forward(
        &mut self,
        ws: &mut Workspace<T, Bk>,
        loss_scale: T,
        with_grad: bool,
    ) -> Result<(), Error> {
        let s = self.ws_shard(ws)?;
        self.forward_shard(&self.shards[s], ws, loss_scale, with_grad)
    }

    fn forward_shard(
        &self,
        sh: &Shard<Bk::Buf>,
        ws: &mut Workspace<T, Bk>,
        loss_scale: T,
        with_grad: bool,
    ) -> Result<(), Error> {
        let (f, h, rows, n) = (self.f, self.h, ws.rows, sh.n);
        self.weight_products(sh, ws)?;
        self.hidden(sh, ws)?;
        let packed = View::packed;
        // z = h·Cᵀ + c + x·R.
        let (c_buf, c_op) = self.c_operand(sh, &ws.w);
        let g = mm(
            n,
            rows,
            f,
            h,
            Operand::n(packed(rows * h)),
            tr(c_op),
            packed(rows * f),
        );
        self.bk.gemm(&g, &ws.h, c_buf, &mut ws.z)?;
        match (self.embedded, self.off_b2) {
            (true, Some(_)) => self
                .bk
                .add_bias(rows, f, &ws.w.c_vec, packed(f), &mut ws.z)?,
            (false, Some(off)) => self
                .bk
                .add_bias(rows, f, &sh.params, self.pv(off), &mut ws.z)?,
            _ => {}
        }
        if let Some(r) = &sh.resid {
            let s = sparse(rows, f, packed(f * f), f, 1, T::one());
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

    /// `C` (`F×H`) of the shard as a gemm operand: its buffer and operand.
    fn c_operand<'a>(
        &self,
        sh: &'a Shard<Bk::Buf>,
        w: &'a Feature<Bk::Buf>,
    ) -> (&'a Bk::Buf, Operand) {
        c_operand(
            w,
            &sh.params,
            self.embedded,
            self.off_w2,
            self.off_w1,
            self.f * self.h,
            self.p_len,
        )
    }

    /// Backward pass after `forward(.., with_grad = true)`: overwrites the shard's
    /// gradients (all of them for a whole-`K` workspace).
    pub fn backward(&mut self, ws: &mut Workspace<T, Bk>) -> Result<(), Error> {
        let s = self.ws_shard(ws)?;
        let mut shards = std::mem::take(&mut self.shards);
        let r = self.backward_dense(&mut shards[s], ws);
        self.shards = shards;
        r
    }

    fn backward_dense(
        &self,
        sh: &mut Shard<Bk::Buf>,
        ws: &mut Workspace<T, Bk>,
    ) -> Result<(), Error> {
        let (f, h, rows, n) = (self.f, self.h, ws.rows, sh.n);
        let packed = View::packed;
        let dout_t = Operand::t(packed(rows * f));
        let h_n = Operand::n(packed(rows * h));
        // dC = doutᵀ·h (F×H), dc = Σ_b dout.
        if self.embedded {
            let g = mm(n, f, h, rows, dout_t, h_n, packed(f * h));
            self.bk.gemm(&g, &ws.dout, &ws.h, &mut ws.g.d_c_mat)?;
            if self.off_b2.is_some() {
                self.bk
                    .col_sum(rows, f, &ws.dout, &mut ws.g.d_c_vec, packed(f))?;
            }
        } else {
            match self.off_w2 {
                Some(off_w2) => {
                    let g = mm(n, f, h, rows, dout_t, h_n, self.pv(off_w2));
                    self.bk.gemm(&g, &ws.dout, &ws.h, &mut sh.grads)?;
                }
                None => {
                    // Tied: W2 = W1ᵀ, so dW1 (H×F) starts as hᵀ·dout.
                    let g = mm(
                        n,
                        h,
                        f,
                        rows,
                        Operand::t(packed(rows * h)),
                        Operand::n(packed(rows * f)),
                        self.pv(self.off_w1),
                    );
                    self.bk.gemm(&g, &ws.h, &ws.dout, &mut sh.grads)?;
                }
            }
            if let Some(off) = self.off_b2 {
                self.bk
                    .col_sum(rows, f, &ws.dout, &mut sh.grads, self.pv(off))?;
            }
        }
        // dh = dout·C.
        let (c_buf, c_op) = self.c_operand(sh, &ws.w);
        let g = mm(
            n,
            rows,
            h,
            f,
            Operand::n(packed(rows * f)),
            c_op,
            packed(rows * h),
        );
        self.bk.gemm(&g, &ws.dout, c_buf, &mut ws.dh)?;
        self.backward_hidden(sh, ws)
    }

    /// From `dh = dout·C` in `ws.dh` (and `dC`, `dc` in place): the ReLU mask, `db1`, the
    /// scatter `dAᵀ = xᵀ·dpre` and the products back through the embedding.
    fn backward_hidden(
        &self,
        sh: &mut Shard<Bk::Buf>,
        ws: &mut Workspace<T, Bk>,
    ) -> Result<(), Error> {
        let (f, h, d, rows, n) = (self.f, self.h, self.d, ws.rows, sh.n);
        let packed = View::packed;
        let bk = &self.bk;
        // h > 0 exactly where pre > 0.
        bk.relu_mask(&ws.h, &mut ws.dh)?;
        if let Some(off) = self.off_b1 {
            bk.col_sum(rows, h, &ws.dh, &mut sh.grads, self.pv(off))?;
        }
        let gr = &mut ws.g;
        bk.fill(&mut gr.d_a_t, T::zero())?;
        let s = sparse(rows, h, packed(f * h), h, 1, T::zero());
        bk.sparse_scatter(&s, &ws.x, &ws.dh, &mut gr.d_a_t)?;
        let Some(e) = &sh.embed else {
            // dW1 (H×F) = I_H·dAᵀᵀ; tied, dW1 already holds dCᵀ and this adds to it.
            let eye = self.eye_h.as_ref().expect("no embedding");
            let beta = if self.off_w2.is_none() {
                T::one()
            } else {
                T::zero()
            };
            let g = gemm(
                n,
                h,
                f,
                h,
                T::one(),
                Operand::n(View::new(0, 0)),
                Operand::t(packed(f * h)),
                self.pv(self.off_w1),
                beta,
            );
            bk.gemm(&g, eye, &gr.d_a_t, &mut sh.grads)?;
            return Ok(());
        };
        if self.off_w2.is_none() {
            bk.axpy(T::one(), &gr.d_c_mat, &mut gr.d_a_t)?;
        }
        let e_view = packed(d * f);
        // dW1 (H×D) = dAᵀᵀ·W_Eᵀ.
        let g = mm(
            n,
            h,
            d,
            f,
            Operand::t(packed(f * h)),
            Operand::t(e_view),
            self.pv(self.off_w1),
        );
        bk.gemm(&g, &gr.d_a_t, e, &mut sh.grads)?;
        if let Some(off_w2) = self.off_w2 {
            // dW2 (D×H) = W_E·dC.
            let g = mm(
                n,
                d,
                h,
                f,
                Operand::n(e_view),
                Operand::n(packed(f * h)),
                self.pv(off_w2),
            );
            bk.gemm(&g, e, &gr.d_c_mat, &mut sh.grads)?;
        }
        if let Some(off_b2) = self.off_b2 {
            // db2 (D) = W_E·dc.
            let g = mm(
                n,
                d,
                1,
                f,
                Operand::n(e_view),
                Operand::n(packed(f)),
                self.pv(off_b2),
            );
            bk.gemm(&g, e, &gr.d_c_vec, &mut sh.grads)?;
        }
        Ok(())
    }

    /// The gradient of the loaded batch (loaded with labels) in hidden space, forward pass
    /// to `h` included; see the module documentation. Overwrites the shard's gradients.
    fn backward_hidden_space(
        &self,
        sh: &mut Shard<Bk::Buf>,
        ws: &mut Workspace<T, Bk>,
        loss_scale: T,
    ) -> Result<(), Error> {
        let (f, h, rows, n) = (self.f, self.h, ws.rows, sh.n);
        if ws.hs.is_none() {
            ws.hs = Some(self.hidden_tables(rows, n)?);
        }
        self.weight_products(sh, ws)?;
        self.hidden(sh, ws)?;
        let sigma = loss_scale + loss_scale;
        let (one, zero) = (T::one(), T::zero());
        let packed = View::packed;
        let (fh, hh, f1, h1) = (packed(f * h), packed(h * h), packed(f), packed(h));
        let shared = View::new(0, 0);
        let bk = &self.bk;
        let diag = self.diag_imp.as_ref().expect("hidden-space gradient");
        let p = ws.hs.as_mut().expect("created above");
        let (c_buf, c_op) = c_operand(
            &ws.w,
            &sh.params,
            self.embedded,
            self.off_w2,
            self.off_w1,
            f * h,
            self.p_len,
        );
        // The bias of the output in feature space: c (F).
        let c_vec = match (self.embedded, self.off_b2) {
            (true, Some(_)) => Some((&ws.w.c_vec, f1)),
            (false, Some(off)) => Some((&sh.params, View::new(off, self.p_len))),
            _ => None,
        };
        let r_view = packed(f * f);
        // Ĉ = σ·diag(imp)·C, M = Cᵀ·Ĉ.
        let g = gemm(n, f, h, f, sigma, Operand::n(shared), c_op, fh, zero);
        bk.gemm(&g, diag, c_buf, &mut p.c_hat)?;
        let g = mm(n, h, h, f, tr(c_op), Operand::n(fh), hh);
        bk.gemm(&g, c_buf, &p.c_hat, &mut p.m_hh)?;
        // dh = h·M + 1·(Ĉᵀc)ᵀ + x·P − y·Ĉ.
        let bh = packed(rows * h);
        let g = mm(n, rows, h, h, Operand::n(bh), Operand::n(hh), bh);
        bk.gemm(&g, &ws.h, &p.m_hh, &mut ws.dh)?;
        if let Some((cb, cv)) = c_vec {
            let g = mm(n, h, 1, f, Operand::t(fh), Operand::n(cv), h1);
            bk.gemm(&g, &p.c_hat, cb, &mut p.mc)?;
            bk.add_bias(rows, h, &p.mc, h1, &mut ws.dh)?;
        }
        if let Some(r) = &sh.resid {
            let g = mm(n, f, h, f, Operand::n(r_view), Operand::n(fh), fh);
            bk.gemm(&g, r, &p.c_hat, &mut p.p_tab)?;
            let s = sparse(rows, h, fh, h, 1, one);
            bk.sparse_gather(&s, &ws.x, &p.p_tab, &mut ws.dh)?;
        }
        let s = sparse(rows, h, fh, h, 1, one);
        bk.sparse_gather(&s, &ws.neg_y, &p.c_hat, &mut ws.dh)?;
        // dC = σ·diag(imp)·[C·hᵀh + c·(1ᵀh) + Rᵀ·(xᵀh) − yᵀh].
        let g = mm(n, h, h, rows, Operand::t(bh), Operand::n(bh), hh);
        bk.gemm(&g, &ws.h, &ws.h, &mut p.g_hh)?;
        let g = mm(n, f, h, h, c_op, Operand::n(hh), fh);
        bk.gemm(&g, c_buf, &p.g_hh, &mut p.inner)?;
        if let Some((cb, cv)) = c_vec {
            bk.col_sum(rows, h, &ws.h, &mut p.hsum, h1)?;
            let g = gemm(n, f, h, 1, one, Operand::n(cv), Operand::n(h1), fh, one);
            bk.gemm(&g, cb, &p.hsum, &mut p.inner)?;
        }
        if let Some(r) = &sh.resid {
            bk.fill(&mut p.xh, zero)?;
            let s = sparse(rows, h, fh, h, 1, zero);
            bk.sparse_scatter(&s, &ws.x, &ws.h, &mut p.xh)?;
            let g = gemm(n, f, h, f, one, Operand::t(r_view), Operand::n(fh), fh, one);
            bk.gemm(&g, r, &p.xh, &mut p.inner)?;
        }
        let s = sparse(rows, h, fh, h, 1, zero);
        bk.sparse_scatter(&s, &ws.neg_y, &ws.h, &mut p.inner)?;
        match (self.embedded, self.off_w2) {
            (true, _) => {
                let g = gemm(
                    n,
                    f,
                    h,
                    f,
                    sigma,
                    Operand::n(shared),
                    Operand::n(fh),
                    fh,
                    zero,
                );
                bk.gemm(&g, diag, &p.inner, &mut ws.g.d_c_mat)?;
            }
            (false, Some(off)) => {
                let g = gemm(
                    n,
                    f,
                    h,
                    f,
                    sigma,
                    Operand::n(shared),
                    Operand::n(fh),
                    self.pv(off),
                    zero,
                );
                bk.gemm(&g, diag, &p.inner, &mut sh.grads)?;
            }
            (false, None) => {
                // dW1 (H×F) = dCᵀ = innerᵀ·σ·diag(imp); the scatter of dpre adds to it.
                let v = self.pv(self.off_w1);
                let g = gemm(
                    n,
                    h,
                    f,
                    f,
                    sigma,
                    Operand::t(fh),
                    Operand::n(shared),
                    v,
                    zero,
                );
                bk.gemm(&g, &p.inner, diag, &mut sh.grads)?;
            }
        }
        // dc = σ·diag(imp)·[C·(1ᵀh) + B·c + Rᵀ·(xᵀ1) − yᵀ1].
        if let Some((cb, cv)) = c_vec {
            let g = mm(n, f, 1, h, c_op, Operand::n(h1), f1);
            bk.gemm(&g, c_buf, &p.hsum, &mut p.inner_c)?;
            let b = T::from_f64(rows as f64);
            let g = gemm(n, f, 1, 1, b, Operand::n(cv), Operand::n(shared), f1, one);
            bk.gemm(&g, cb, &p.ones, &mut p.inner_c)?;
            let ones_spec = sparse(rows, 1, f1, 1, 1, zero);
            if let Some(r) = &sh.resid {
                bk.fill(&mut p.xsum, zero)?;
                bk.sparse_scatter(&ones_spec, &ws.x, &p.ones, &mut p.xsum)?;
                let g = gemm(n, f, 1, f, one, Operand::t(r_view), Operand::n(f1), f1, one);
                bk.gemm(&g, r, &p.xsum, &mut p.inner_c)?;
            }
            bk.sparse_scatter(&ones_spec, &ws.neg_y, &p.ones, &mut p.inner_c)?;
            if self.embedded {
                let g = gemm(
                    n,
                    f,
                    1,
                    f,
                    sigma,
                    Operand::n(shared),
                    Operand::n(f1),
                    f1,
                    zero,
                );
                bk.gemm(&g, diag, &p.inner_c, &mut ws.g.d_c_vec)?;
            } else {
                let off = self.off_b2.expect("bias present");
                let g = gemm(
                    n,
                    f,
                    1,
                    f,
                    sigma,
                    Operand::n(shared),
                    Operand::n(f1),
                    self.pv(off),
                    zero,
                );
                bk.gemm(&g, diag, &p.inner_c, &mut sh.grads)?;
            }
        }
        self.backward_hidden(sh, ws)
    }

    /// The gradient of the shard in `ws` on its part of `batch` (all `K` instances), into
    /// the shard's gradients: through hidden space where that applies
    /// ([`hidden_space_gradient`](Self::hidden_space_gradient)), else the plain path.
    fn train_shard(
        &self,
        sh: &mut Shard<Bk::Buf>,
        ws: &mut Workspace<T, Bk>,
        batch: &HostBatch<T>,
        loss_scale: T,
    ) -> Result<(), Error> {
        debug_assert!(self.bk.len(&sh.grads) == sh.n * self.p_len);
        if self.hidden_space_gradient() {
            self.load(ws, batch, true)?;
            self.backward_hidden_space(sh, ws, loss_scale)
        } else {
            self.load(ws, batch, false)?;
            self.forward_shard(sh, ws, loss_scale, true)?;
            self.backward_dense(sh, ws)
        }
    }

    /// Whether the shards of a training step run side by side on rayon's threads (CPU).
    fn parallel_shards(&self) -> bool {
        self.shards.len() > 1 && self.bk.parallel_instances()
    }

    /// One training step of every instance on `batch` (`K` instances × `pool`'s rows):
    /// gradient and Adam update `adam`, shard by shard (side by side on rayon's threads on
    /// the CPU). With `losses`, every instance's batch loss goes there first (`K`
    /// entries, summed over the batch; the plain forward pass), and a non-finite one
    /// stops the step before any instance is updated ([`Error::NonFinite`] with `step` 0:
    /// the caller fills it in). The weights do not depend on the shard size or on whether
    /// losses were asked for.
    pub fn train_step(
        &mut self,
        pool: &WorkspacePool<T, Bk>,
        batch: &HostBatch<T>,
        loss_scale: T,
        adam: &AdamSpec<T>,
        losses: Option<&mut [f64]>,
    ) -> Result<(), Error> {
        let parallel = self.parallel_shards();
        let shard_len = self.shard_len;
        let keep = self.keep_grads;
        let mut shards = std::mem::take(&mut self.shards);
        let this = &*self;
        // The gradient of a shard (in its workspace's buffer unless the shard keeps its
        // own), then, with `adam`, its update; or, with `loss_into`, only its losses.
        let run = |sh: &mut Shard<Bk::Buf>,
                   adam: Option<&AdamSpec<T>>,
                   loss_into: Option<&mut [f64]>|
         -> Result<(), Error> {
            let mut ws = pool.take(this, sh.first, sh.n)?;
            let r = match loss_into {
                Some(out) => this.shard_losses(sh, &mut ws, batch, loss_scale, out),
                None => {
                    if !keep {
                        std::mem::swap(&mut sh.grads, &mut ws.grads);
                    }
                    let r = this.train_shard(sh, &mut ws, batch, loss_scale);
                    let r = r.and_then(|()| match adam {
                        Some(spec) => this.adam_shard(sh, spec),
                        None => Ok(()),
                    });
                    if !keep {
                        std::mem::swap(&mut sh.grads, &mut ws.grads);
                    }
                    r
                }
            };
            pool.put(ws);
            r
        };
        let result = match losses {
            None => for_shards(parallel, &mut shards, |sh| run(sh, Some(adam), None)),
            Some(out) => {
                // Losses of every instance first: a non-finite one stops the step before
                // any instance is updated.
                let r = if parallel {
                    shards
                        .par_iter_mut()
                        .zip(out.par_chunks_mut(shard_len))
                        .try_for_each(|(sh, o)| run(sh, None, Some(o)))
                } else {
                    shards
                        .iter_mut()
                        .zip(out.chunks_mut(shard_len))
                        .try_for_each(|(sh, o)| run(sh, None, Some(o)))
                };
                r.and_then(|()| match out.iter().position(|l| !l.is_finite()) {
                    Some(instance) => Err(Error::NonFinite {
                        step: 0,
                        instance,
                        value: out[instance],
                    }),
                    None => for_shards(parallel, &mut shards, |sh| run(sh, Some(adam), None)),
                })
            }
        };
        self.shards = shards;
        result
    }

    /// The batch loss of every instance of the shard (the plain forward pass), summed
    /// over its samples, into `out`.
    fn shard_losses(
        &self,
        sh: &Shard<Bk::Buf>,
        ws: &mut Workspace<T, Bk>,
        batch: &HostBatch<T>,
        loss_scale: T,
        out: &mut [f64],
    ) -> Result<(), Error> {
        self.load(ws, batch, false)?;
        self.forward_shard(sh, ws, loss_scale, false)?;
        let rl = self.bk.read(&ws.row_loss)?;
        for (o, c) in out.iter_mut().zip(rl.chunks_exact(ws.rows.max(1))) {
            *o = c.iter().map(|v| v.as_f64()).sum();
        }
        Ok(())
    }

    fn adam_shard(&self, sh: &mut Shard<Bk::Buf>, spec: &AdamSpec<T>) -> Result<(), Error> {
        self.bk.adam(
            spec,
            &mut sh.params,
            &sh.grads,
            &mut sh.adam_m,
            &mut sh.adam_v,
        )?;
        Ok(())
    }

    /// One Adam/AdamW update of every instance with the current gradients.
    pub fn adam_step(&mut self, spec: &AdamSpec<T>) -> Result<(), Error> {
        let mut shards = std::mem::take(&mut self.shards);
        let r = shards
            .iter_mut()
            .try_for_each(|sh| self.adam_shard(sh, spec));
        self.shards = shards;
        r
    }

    fn read_all(&self, pick: impl Fn(&Shard<Bk::Buf>) -> &Bk::Buf) -> Result<Vec<T>, Error> {
        if let [one] = &self.shards[..] {
            return Ok(self.bk.read(pick(one))?);
        }
        let mut all = Vec::with_capacity(self.k * self.p_len);
        for sh in &self.shards {
            all.extend(self.bk.read(pick(sh))?);
        }
        Ok(all)
    }

    /// Downloads the parameters (`K × p_len`).
    pub fn read_params(&self) -> Result<Vec<T>, Error> {
        self.read_all(|s| &s.params)
    }

    /// Downloads the gradients of the last backward pass (models that keep them).
    pub fn read_grads(&self) -> Result<Vec<T>, Error> {
        if !self.keep_grads {
            return Err(Error::Shape(
                "this model does not keep gradients between training steps".into(),
            ));
        }
        self.read_all(|s| &s.grads)
    }

    /// Downloads the Adam moments `(m, v)`.
    pub fn read_moments(&self) -> Result<(Vec<T>, Vec<T>), Error> {
        Ok((self.read_all(|s| &s.adam_m)?, self.read_all(|s| &s.adam_v)?))
    }

    /// Overwrites parameters and Adam moments (resume, transplant).
    pub fn write_state(&mut self, params: &[T], m: &[T], v: &[T]) -> Result<(), Error> {
        let n = self.k * self.p_len;
        if params.len() != n || m.len() != n || v.len() != n {
            return Err(Error::Shape(format!(
                "state must have {n} elements per tensor"
            )));
        }
        for sh in &mut self.shards {
            let r = sh.first * self.p_len..(sh.first + sh.n) * self.p_len;
            self.bk.write(&mut sh.params, &params[r.clone()])?;
            self.bk.write(&mut sh.adam_m, &m[r.clone()])?;
            self.bk.write(&mut sh.adam_v, &v[r])?;
        }
        Ok(())
    }
}

/// `f` on every shard, side by side on rayon's threads when `parallel`.
fn for_shards<B: Send>(
    parallel: bool,
    shards: &mut [Shard<B>],
    f: impl Fn(&mut Shard<B>) -> Result<(), Error> + Sync + Send,
) -> Result<(), Error> {
    if parallel {
        shards.par_iter_mut().try_for_each(f)
    } else {
        shards.iter_mut().try_for_each(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Sampler;
    use crate::config::{Config, Mixing, Variant};
    use crate::init::{rng, Stream};
    use crate::optim::adam_spec;
    use proptest::prelude::*;
    use tmcc_kernels::cpu::Cpu;

    fn batch<T: Float>(cfg: &Config) -> HostBatch<T> {
        let rngs = (0..cfg.instances)
            .map(|k| rng(cfg.instance_seed(k), Stream::Data))
            .collect();
        let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
        let mut b = HostBatch::default();
        Sampler::new(rngs, ps).sample(cfg.batch_size, cfg.n_feat, &mut b);
        b
    }

    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
        let n: f64 = b.iter().map(|y| y * y).sum::<f64>();
        (d / n.max(1e-300)).sqrt()
    }

    /// (plain gradient, hidden-space gradient) of the first batch, in f64.
    fn both_gradients(cfg: &Config) -> (Vec<f64>, Vec<f64>) {
        let mut m = Model::<f64>::new(cfg).unwrap();
        for k in 0..cfg.instances {
            for name in [Param::B1, Param::B2] {
                if let Some(s) = m.layout.get(name).cloned() {
                    for i in 0..s.len {
                        m.params[k * m.layout.len + s.offset + i] =
                            0.05 * ((i + k) % 5) as f64 - 0.1;
                    }
                }
            }
        }
        let x = batch::<f64>(cfg);
        let scale = 1.0 / (cfg.batch_size * cfg.n_feat) as f64;
        let mut fast = FastModel::new(Cpu, &m).unwrap();
        let mut ws = fast.workspace(cfg.batch_size).unwrap();
        fast.load_batch(&mut ws, &x).unwrap();
        fast.forward(&mut ws, scale, true).unwrap();
        fast.backward(&mut ws).unwrap();
        let plain = fast.read_grads().unwrap();
        let mut fast = FastModel::new(Cpu, &m).unwrap();
        let mut ws = fast
            .workspace_for(cfg.batch_size, 0, cfg.instances, true)
            .unwrap();
        let mut shards = std::mem::take(&mut fast.shards);
        fast.train_shard(&mut shards[0], &mut ws, &x, scale)
            .unwrap();
        fast.shards = shards;
        (plain, fast.read_grads().unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn hidden_space_gradient_equals_the_plain_one(
            v in 0usize..6, f in 2usize..9, h in 1usize..6, extra_d in 0usize..6,
            b in 1usize..9, flags in 0u32..64, seed in 0u64..1000, r in -1.0f64..1.5,
        ) {
            let cfg = Config {
                variant: Variant::ALL[v],
                n_feat: f,
                n_hidden: h,
                d_emb: f + extra_d,
                p: [0.2, 0.5, 1.0][(flags % 3) as usize],
                res_factor: Some(r),
                mixing: Mixing::Asymmetric,
                sigma: 0.3,
                bias1: flags & 4 != 0,
                bias2: flags & 8 != 0,
                tied: flags & 16 != 0,
                importance: if flags & 32 != 0 {
                    (0..f).map(|i| 0.5 + 0.25 * i as f64).collect()
                } else {
                    Vec::new()
                },
                batch_size: b,
                instances: 2,
                seed,
                ..Config::default()
            };
            let (plain, hidden) = both_gradients(&cfg);
            let e = rel_err(&hidden, &plain);
            prop_assert!(e < 1e-10, "{:?}: relative error {e}", cfg.variant);
        }
    }

    /// The plain and the hidden-space gradient of `m` on `x`.
    fn grads_of<T: Float>(m: &Model<T>, x: &HostBatch<T>) -> (Vec<f64>, Vec<f64>) {
        let cfg = &m.cfg;
        let scale = T::one() / T::from_f64((cfg.batch_size * cfg.n_feat) as f64);
        let mut fast = FastModel::new(Cpu, m).unwrap();
        let mut ws = fast
            .workspace_for(cfg.batch_size, 0, cfg.instances, true)
            .unwrap();
        fast.load_batch(&mut ws, x).unwrap();
        fast.forward(&mut ws, scale, true).unwrap();
        fast.backward(&mut ws).unwrap();
        let plain = fast.read_grads().unwrap();
        let mut shards = std::mem::take(&mut fast.shards);
        fast.train_shard(&mut shards[0], &mut ws, x, scale).unwrap();
        fast.shards = shards;
        let hidden = fast.read_grads().unwrap();
        let f = |v: Vec<T>| v.into_iter().map(|x| x.as_f64()).collect();
        (f(plain), f(hidden))
    }

    /// At the seed setting, in f32, both gradients are within 1e-5 (norm-wise) of the
    /// f64 gradient at the same weights and batch, at initialization and after training
    /// (where `dout` is small against the terms the hidden-space form cancels).
    #[test]
    fn hidden_space_gradient_is_accurate_in_f32_at_the_seed_setting() {
        for variant in [Variant::EmbRes, Variant::Mix] {
            for steps in [0, 400] {
                let cfg = Config {
                    variant,
                    lr: 3e-3,
                    steps: 10_000,
                    ..Config::default()
                };
                let mut m = Model::<f32>::new(&cfg).unwrap();
                let mut t = crate::train::Trainer::new(Cpu, m.clone()).unwrap();
                for _ in 0..steps {
                    t.step(false).unwrap();
                }
                m.params = t.fast.read_params().unwrap();
                let x = batch::<f32>(&cfg);
                let up = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
                let m64 = Model::<f64> {
                    cfg: m.cfg.clone(),
                    layout: m.layout.clone(),
                    params: up(&m.params),
                    embed: m.embed.as_deref().map(up),
                    mixing: m.mixing.as_deref().map(up),
                };
                let x64 = HostBatch {
                    instances: x.instances,
                    rows_per_instance: x.rows_per_instance,
                    n_feat: x.n_feat,
                    row_ptr: x.row_ptr.clone(),
                    col: x.col.clone(),
                    val: up(&x.val),
                };
                let (truth, _) = grads_of(&m64, &x64);
                let (plain, hidden) = grads_of(&m, &x);
                let (ep, eh) = (rel_err(&plain, &truth), rel_err(&hidden, &truth));
                eprintln!(
                    "{variant:?} after {steps} steps: plain f32 {ep:.2e}, hidden f32 {eh:.2e}"
                );
                assert!(
                    ep < 1e-5 && eh < 1e-5,
                    "{variant:?} after {steps}: {ep} {eh}"
                );
            }
        }
    }

    /// Sharded and parallel training steps give bit-identical weights to one shard.
    #[test]
    fn shards_do_not_change_the_result() {
        for variant in [Variant::EmbRes, Variant::Mix, Variant::Mlp] {
            let cfg = Config {
                variant,
                n_feat: 12,
                n_hidden: 5,
                d_emb: 30,
                p: 0.1,
                batch_size: 16,
                instances: 5,
                bias1: true,
                ..Config::default()
            };
            let m = Model::<f32>::new(&cfg).unwrap();
            let x = batch::<f32>(&cfg);
            let run = |shard: usize, want_loss: bool| {
                let mut fast = FastModel::new_sharded(Cpu, &m, shard, false).unwrap();
                let pool = fast.workspace_pool(cfg.batch_size).unwrap();
                let mut losses = vec![0.0; cfg.instances];
                for t in 0..3 {
                    let l = want_loss.then_some(&mut losses[..]);
                    fast.train_step(&pool, &x, 1.0 / 192.0, &adam_spec(&cfg, t), l)
                        .unwrap();
                }
                fast.read_params().unwrap()
            };
            let one = run(5, false);
            for shard in [1, 2, 3] {
                assert_eq!(run(shard, false), one, "{variant:?} shards of {shard}");
                assert_eq!(
                    run(shard, true),
                    one,
                    "{variant:?} shards of {shard}, losses"
                );
            }
        }
    }
}
