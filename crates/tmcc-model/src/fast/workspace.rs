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

/// The weight products of the forward pass (module documentation of [`super`]).
pub(super) struct Feature<B> {
    /// `Aᵀ = W_EᵀW1ᵀ`, or `W1ᵀ` without an embedding: `F×H`.
    pub a_t: B,
    /// `C = W_EᵀW2`: `F×H` (embedding variants with an untied `W2`).
    pub c_mat: B,
    /// `c = W_Eᵀb2`: `F` (embedding variants with `b2`).
    pub c_vec: B,
}

/// Their gradients.
pub(super) struct Grad<B> {
    /// `dAᵀ = xᵀ·dpre`: `F×H`.
    pub d_a_t: B,
    /// `dC`: `F×H` (embedding variants).
    pub d_c_mat: B,
    /// `dc`: `F` (embedding variants).
    pub d_c_vec: B,
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
    /// `h = ReLU(pre)`: `B×H`; `pre` itself only passes through `dh` (`h > 0` exactly
    /// where `pre > 0`).
    pub h: Bk::Buf,
    /// `z`, the output before the output activation: `B×F`.
    pub z: Bk::Buf,
    /// `ReLU(z)` with a ReLU output activation: `B×F` (empty with identity).
    pub out_relu: Bk::Buf,
    /// `∂L/∂out`, then `∂L/∂z`: `B×F`.
    pub dout: Bk::Buf,
    /// `pre` in the forward pass, then `dh` and `dpre`: `B×H`.
    pub dh: Bk::Buf,
    /// Per-sample losses: `B`.
    pub row_loss: Bk::Buf,
    /// The state's gradients during a training step, when the state does not keep them:
    /// `P` per instance.
    pub(super) grads: Bk::Buf,
    pub(super) w: Feature<Bk::Buf>,
    pub(super) g: Grad<Bk::Buf>,
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
        let (n, bk, f, h) = (instances, &plan.bk, plan.f, plan.h);
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
        Ok(Self {
            rows,
            first,
            instances: n,
            x: csr()?,
            y: csr()?,
            neg_y: csr()?,
            h: z(rows * h)?,
            z: z(rows * f)?,
            out_relu: z(if plan.out_relu { rows * f } else { 0 })?,
            dout: z(rows * f)?,
            dh: z(rows * h)?,
            row_loss: z(rows)?,
            grads: z(if training && !plan.keep_grads {
                plan.p_len
            } else {
                0
            })?,
            w: Feature {
                a_t: z(f * h)?,
                c_mat: emb(f * h)?,
                c_vec: emb(f)?,
            },
            g: Grad {
                d_a_t: z(f * h)?,
                d_c_mat: emb(f * h)?,
                d_c_vec: emb(f)?,
            },
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
        let (bk, f, h) = (&plan.bk, plan.f, plan.h);
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
