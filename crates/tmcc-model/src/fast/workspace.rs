//! The activations of one instance state for batches of `rows` samples, the uploaded
//! batch and its labels, and the per-step weight products; and the pool of workspaces a
//! training step hands out to the states it runs side by side.
//!
//! Shapes per instance (`n` instances of the state, packed one after the other): `B` is
//! `rows`; every buffer's shape is written beside it.

use std::sync::Mutex;

use tmcc_kernels::{Backend, Csr};

use super::plan::Plan;
use crate::batch::HostBatch;
use crate::model::Float;
use crate::Error;

/// The buffers of one residual block `l` of width `H_l` (module documentation of
/// [`super`]).
pub(super) struct BlockBufs<B> {
    /// `h_l = act(pre_l)`: `B×H_l`.
    pub h: B,
    /// `pre_l` in the forward pass, then `dh_l` and `dpre_l`: `B×H_l`.
    pub dh: B,
    /// `pre_l` kept for the backward pass (GELU only; with ReLU `h_l > 0` exactly where
    /// `pre_l > 0`): `B×H_l`.
    pub pre: B,
    /// `Aᵀ_l = W_EᵀW1_lᵀ`, or `W1_lᵀ` without an embedding: `F×H_l`.
    pub a_t: B,
    /// `C_l = W_EᵀW2_l`: `F×H_l` (embedding variants).
    pub c_mat: B,
    /// `c_l = W_Eᵀb2_l`: `F` (embedding variants).
    pub c_vec: B,
    /// `dAᵀ_l = xᵀ·dpre_l`: `F×H_l`.
    pub d_a_t: B,
    /// `dC_l`: `F×H_l` (embedding variants).
    pub d_c_mat: B,
    /// `dc_l`: `F` (embedding variants).
    pub d_c_vec: B,
    /// `G_{l,m} = W1_l W2_m` for every earlier block `m < l`: `H_l×H_m` each.
    pub g: Vec<B>,
    /// Their gradients `dG_{l,m} = dpre_lᵀ h_m`.
    pub d_g: Vec<B>,
    /// `β_l = Σ_{m<l} W1_l b2_m` and its gradient `Σ_b dpre_l`: `H_l` each (blocks
    /// `l ≥ 1` with `b2`).
    pub beta: B,
    pub d_beta: B,
}

/// The tables of the hidden-space gradient (module documentation of [`super`]).
pub(super) struct HiddenTables<B> {
    /// `Ĉ = σ·diag(imp)·C`: `F×H`.
    pub c_hat: B,
    /// `Cᵀ·Ĉ`: `H×H`.
    pub c_t_c_hat: B,
    /// `R·Ĉ`: `F×H`.
    pub r_c_hat: B,
    /// `hᵀh`: `H×H`.
    pub h_t_h: B,
    /// The bracket of `dC` before `σ·diag(imp)`: `F×H`.
    pub d_c_inner: B,
    /// `xᵀh`: `F×H`.
    pub x_t_h: B,
    /// `1ᵀh`: `H`.
    pub h_sum: B,
    /// `xᵀ1`: `F`.
    pub x_sum: B,
    /// The bracket of `dc` before `σ·diag(imp)`: `F`.
    pub d_c_vec_inner: B,
    /// `Ĉᵀc`: `H`.
    pub c_hat_t_c: B,
    /// Ones: `B` per instance.
    pub ones: B,
}

/// The activations of a state (`first .. first + instances`) for batches of `rows`.
pub struct Workspace<T: Float, Bk: Backend<T>> {
    pub rows: usize,
    /// The first instance of the state.
    pub first: usize,
    /// Instances in the state.
    pub instances: usize,
    /// The batch `x`: CSR, `n·B` rows of `F`.
    pub x: Csr<Bk::Idx, Bk::Buf>,
    /// The labels `y` at the cells of `x` (the loss).
    pub y: Csr<Bk::Idx, Bk::Buf>,
    /// The negated labels `−y` at the cells of `x` (hidden-space gradient only).
    pub neg_y: Csr<Bk::Idx, Bk::Buf>,
    /// The blocks' activations and products, in order.
    pub(super) blocks: Vec<BlockBufs<Bk::Buf>>,
    /// `z`, the output before the output activation: `B×F`.
    pub z: Bk::Buf,
    /// `out_act(z)` with an output activation: `B×F` (empty with identity).
    pub out: Bk::Buf,
    /// `∂L/∂out`, then `∂L/∂z`: `B×F`.
    pub dout: Bk::Buf,
    /// Per-sample losses: `B`.
    pub row_loss: Bk::Buf,
    /// The state's gradients during a training step, when the state does not keep them:
    /// `P` per instance.
    pub(super) grads: Bk::Buf,
    pub(super) hs: Option<HiddenTables<Bk::Buf>>,
    /// Host staging of the state's CSR offsets (rebased to 0) and label values.
    host_ptr: Vec<u32>,
    host_labels: Vec<T>,
}

impl<T: Float, Bk: Backend<T>> Workspace<T, Bk> {
    /// A workspace for instances `first .. first + instances` of `plan`; `training` adds
    /// the gradient buffer (states that do not keep theirs) and the hidden-space tables.
    pub(super) fn new(
        plan: &Plan<T, Bk>,
        rows: usize,
        first: usize,
        instances: usize,
        training: bool,
    ) -> Result<Self, Error> {
        let (n, bk, f) = (instances, &plan.bk, plan.f);
        let csr = || -> Result<Csr<Bk::Idx, Bk::Buf>, Error> {
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
        let hs = if training && plan.hidden_space_gradient() {
            Some(HiddenTables::new(plan, rows, n)?)
        } else {
            None
        };
        let emb = |len: usize| z(if plan.embedded { len } else { 0 });
        let gelu = plan.act == crate::act::Act::Gelu;
        let has_b2 = plan.off(0).b2.is_some();
        let mut blocks = Vec::with_capacity(plan.blocks.len());
        for (l, bp) in plan.blocks.iter().enumerate() {
            let h = bp.h;
            let earlier = &plan.blocks[..l];
            let cross = || -> Result<Vec<Bk::Buf>, tmcc_kernels::KernelError> {
                earlier.iter().map(|m| z(h * m.h)).collect()
            };
            let beta = || z(if l > 0 && has_b2 { h } else { 0 });
            blocks.push(BlockBufs {
                h: z(rows * h)?,
                dh: z(rows * h)?,
                pre: z(if gelu { rows * h } else { 0 })?,
                a_t: z(f * h)?,
                c_mat: emb(f * h)?,
                c_vec: emb(f)?,
                d_a_t: z(f * h)?,
                d_c_mat: emb(f * h)?,
                d_c_vec: emb(f)?,
                g: cross()?,
                d_g: cross()?,
                beta: beta()?,
                d_beta: beta()?,
            });
        }
        Ok(Self {
            rows,
            first,
            instances: n,
            x: csr()?,
            y: csr()?,
            neg_y: csr()?,
            blocks,
            z: z(rows * f)?,
            out: z(if plan.out_act.is_some() { rows * f } else { 0 })?,
            dout: z(rows * f)?,
            row_loss: z(rows)?,
            grads: z(if training && !plan.keep_grads {
                plan.p_len
            } else {
                0
            })?,
            hs,
            host_ptr: Vec::new(),
            host_labels: Vec::new(),
        })
    }

    /// Copies this workspace's instances of a host batch (all `K` instances × `rows`
    /// samples, or exactly this workspace's instances) into it, with its labels, and with
    /// `neg_labels` also the negated labels of the hidden-space gradient.
    pub(super) fn load(
        &mut self,
        plan: &Plan<T, Bk>,
        x: &HostBatch<T>,
        neg_labels: bool,
    ) -> Result<(), Error> {
        let whole = x.instances == plan.k;
        if !(whole || x.instances == self.instances)
            || x.rows_per_instance != self.rows
            || x.n_feat != plan.f
            || self.first + self.instances > plan.k
        {
            return Err(Error::Shape(format!(
                "batch is {}×{}×{}, workspace wants {}×{}×{} (instances {}.. of {})",
                x.instances,
                x.rows_per_instance,
                x.n_feat,
                self.instances,
                self.rows,
                plan.f,
                self.first,
                plan.k
            )));
        }
        let first = if whole { self.first } else { 0 };
        let (r0, r1) = (first * self.rows, (first + self.instances) * self.rows);
        let (lo, hi) = (x.row_ptr[r0] as usize, x.row_ptr[r1] as usize);
        let ptr = &x.row_ptr[r0..=r1];
        if lo != 0 {
            self.host_ptr.clear();
            self.host_ptr.extend(ptr.iter().map(|&p| p - lo as u32));
        }
        let ptr = if lo == 0 { ptr } else { &self.host_ptr[..] };
        let (cols, vals) = (&x.col[lo..hi], &x.val[lo..hi]);
        let bk = &plan.bk;
        let upload = |csr: &mut Csr<Bk::Idx, Bk::Buf>, v: &[T]| -> Result<(), Error> {
            bk.write_idx(&mut csr.row_ptr, ptr)?;
            bk.write_idx(&mut csr.col, cols)?;
            bk.write(&mut csr.val, v)?;
            csr.nnz = hi - lo;
            Ok(())
        };
        upload(&mut self.x, vals)?;
        self.host_labels.clear();
        self.host_labels.extend(
            cols.iter()
                .zip(vals)
                .map(|(&c, &v)| plan.task.label(c as usize, v)),
        );
        upload(&mut self.y, &self.host_labels)?;
        if neg_labels {
            self.host_labels.iter_mut().for_each(|y| *y = -*y);
            upload(&mut self.neg_y, &self.host_labels)?;
        }
        Ok(())
    }
}

impl<B> HiddenTables<B> {
    pub(super) fn new<T: Float, Bk: Backend<T, Buf = B>>(
        plan: &Plan<T, Bk>,
        rows: usize,
        n: usize,
    ) -> Result<Self, Error> {
        let (bk, f, h) = (&plan.bk, plan.f, plan.h(0));
        let z = |len: usize| bk.zeros(n * len);
        Ok(Self {
            c_hat: z(f * h)?,
            c_t_c_hat: z(h * h)?,
            r_c_hat: z(f * h)?,
            h_t_h: z(h * h)?,
            d_c_inner: z(f * h)?,
            x_t_h: z(f * h)?,
            h_sum: z(h)?,
            x_sum: z(f)?,
            d_c_vec_inner: z(f)?,
            c_hat_t_c: z(h)?,
            ones: bk.upload(&vec![T::one(); (n * rows).max(1)])?,
        })
    }
}

/// Workspaces for the states of a training step: taken by a state's task, returned after;
/// a new one is made if all are in use (only when rayon nests tasks).
pub struct WorkspacePool<T: Float, Bk: Backend<T>> {
    pub(super) rows: usize,
    pub(super) free: Mutex<Vec<Workspace<T, Bk>>>,
}

impl<T: Float, Bk: Backend<T>> WorkspacePool<T, Bk> {
    pub(super) fn take(
        &self,
        plan: &Plan<T, Bk>,
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
            None => Workspace::new(plan, self.rows, first, n, true)?,
        };
        ws.first = first;
        Ok(ws)
    }

    pub(super) fn put(&self, ws: Workspace<T, Bk>) {
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
