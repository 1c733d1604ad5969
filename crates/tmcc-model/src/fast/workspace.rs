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

/// What sets the sizes of a [`Workspace`]: the plan's dimensions and flags. The memory
/// estimate ([`crate::memory`]) counts workspaces with it before any exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkspaceShape {
    /// Features `F`, hidden `H`, parameters per instance `P`.
    pub f: usize,
    pub h: usize,
    pub p_len: usize,
    pub embedded: bool,
    pub out_relu: bool,
    pub hidden_space: bool,
    pub keep_grads: bool,
}

impl WorkspaceShape {
    /// The shape a trainer's plan gives `cfg` (gradients live in the workspaces) with
    /// `p_len` parameters per instance.
    pub fn of(cfg: &crate::Config, p_len: usize) -> Self {
        use crate::config::{LossName, OutAct};
        Self {
            f: cfg.n_feat,
            h: cfg.n_hidden,
            p_len,
            embedded: cfg.variant.has_embedding(),
            out_relu: cfg.out_act == OutAct::Relu,
            hidden_space: cfg.loss == LossName::L2 && cfg.out_act == OutAct::Identity,
            keep_grads: false,
        }
    }

    /// Elements (4 bytes each: values and indices) of a workspace of `n` instances and
    /// `rows` rows holding a batch of `nnz` non-zeros, as [`Workspace::new`] and
    /// [`Workspace::load`] allocate them.
    pub fn elements(&self, rows: usize, n: usize, training: bool, nnz: usize) -> usize {
        let (f, h, nr) = (self.f, self.h, n * rows);
        let emb = |len: usize| if self.embedded { len } else { 0 };
        let hidden_space = training && self.hidden_space;
        // x, y and −y (hidden space): offsets, and a column and a value per non-zero
        let csr = 3 * (nr + 1) + 2 * nnz * if hidden_space { 3 } else { 2 };
        let activations = nr * (2 * h + 2 * f + 1) + if self.out_relu { nr * f } else { 0 };
        let grads = if training && !self.keep_grads {
            n * self.p_len
        } else {
            0
        };
        let products = 2 * n * (f * h + emb(f * h + f));
        let tables = if hidden_space {
            n * (4 * f * h + 2 * h * h + 2 * h + 2 * f) + nr.max(1)
        } else {
            0
        };
        csr + activations + grads + products + tables
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Sampler;
    use crate::init::{rng, Stream};
    use crate::{Config, Model};
    use tmcc_kernels::cpu::Cpu;

    fn allocated(ws: &Workspace<f32, Cpu>) -> usize {
        let csr = |c: &Csr<Vec<u32>, Vec<f32>>| c.row_ptr.len() + c.col.len() + c.val.len();
        let tables = ws.hs.as_ref().map_or(0, |t| {
            [
                &t.c_hat,
                &t.c_t_c_hat,
                &t.r_c_hat,
                &t.h_t_h,
                &t.d_c_inner,
                &t.x_t_h,
            ]
            .iter()
            .chain([&t.h_sum, &t.x_sum, &t.d_c_vec_inner, &t.c_hat_t_c, &t.ones].iter())
            .map(|b| b.len())
            .sum()
        });
        csr(&ws.x)
            + csr(&ws.y)
            + csr(&ws.neg_y)
            + [
                &ws.h,
                &ws.z,
                &ws.out_relu,
                &ws.dout,
                &ws.dh,
                &ws.row_loss,
                &ws.grads,
            ]
            .iter()
            .map(|b| b.len())
            .sum::<usize>()
            + [
                &ws.w.a_t,
                &ws.w.c_mat,
                &ws.w.c_vec,
                &ws.g.d_a_t,
                &ws.g.d_c_mat,
                &ws.g.d_c_vec,
            ]
            .iter()
            .map(|b| b.len())
            .sum::<usize>()
            + tables
    }

    /// The declared sizes are what a workspace allocates, for every variant, with and
    /// without training, after a batch is loaded.
    #[test]
    fn declared_sizes_match_the_buffers() {
        for (variant, relu) in [
            ("emb_res", false),
            ("mlp", true),
            ("mix", false),
            ("emb_mlp", true),
        ] {
            let mut cfg = Config {
                n_feat: 9,
                n_hidden: 4,
                d_emb: 12,
                p: 0.3,
                instances: 3,
                bias2: true,
                ..Config::default()
            };
            cfg.set_str("variant", variant).unwrap();
            if relu {
                cfg.set_str("out_act", "relu").unwrap();
            }
            let model = Model::<f32>::new(&cfg).unwrap();
            let fast = super::super::FastModel::new_in_states(Cpu, &model, 3, false).unwrap();
            let shape = WorkspaceShape::of(&cfg, model.layout.len);
            assert_eq!(shape.hidden_space, fast.plan.hidden_space_gradient());
            assert_eq!(shape.embedded, fast.plan.embedded);
            let rows = 7;
            let mut sampler = Sampler::<f32>::new(
                (0..3).map(|k| rng(k, Stream::Data)).collect(),
                vec![cfg.p; 3],
            );
            let mut batch = HostBatch::default();
            sampler.sample(rows, cfg.n_feat, &mut batch);
            for training in [false, true] {
                let mut ws = Workspace::new(&fast.plan, rows, 0, 3, training).unwrap();
                assert_eq!(
                    allocated(&ws),
                    shape.elements(rows, 3, training, 0),
                    "{variant}"
                );
                ws.load(&fast.plan, &batch, training && shape.hidden_space)
                    .unwrap();
                let nnz = batch.col.len();
                assert!(nnz > 0);
                assert_eq!(
                    allocated(&ws),
                    shape.elements(rows, 3, training, nnz),
                    "{variant}"
                );
            }
        }
    }
}
