//! The fast path: forward and backward of `K` instances through the kernel backend,
//! exploiting the sparse `x` and the fixed embedding (docs/science.md#fast-path). Same
//! maths as [`crate::reference`];
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
//! [`FastModel::backward`] are the plain path. Both agree with the f64 gradient to ~1e-6
//! in f32 (tests), at initialization and after training.
//!
//! ## Deeper models
//!
//! With `L` blocks, block `l` reads the stream `a_l = W_E x + Σ_{m<l} (W2_m h_m + b2_m)`.
//! It lives in the span of `W_E`'s columns and of the earlier blocks' `W2_m`, so the
//! block's pre-activation needs no `B×D` product either: one `F×H_l` table for the input,
//! one `H_l×H_m` factor per earlier block and one bias ([`cross`]):
//!
//! ```text
//! Aᵀ_l = W_Eᵀ W1_lᵀ  (F×H_l)     G_{l,m} = W1_l W2_m  (H_l×H_m)     β_l = Σ_{m<l} W1_l b2_m
//! pre_l = x Aᵀ_l + Σ_{m<l} h_m G_{l,m}ᵀ + b1_l + β_l          h_l = act(pre_l)
//! z = Σ_l (h_l C_lᵀ + c_l) + x R,  C_l = W_Eᵀ W2_l,  c_l = W_Eᵀ b2_l
//! ```
//!
//! Backward, last block first: `dh_l = dz C_l + Σ_{m>l} dpre_m G_{m,l}`,
//! `dpre_l = dh_l ⊙ act'(pre_l)`, then `dAᵀ_l = xᵀ dpre_l` (scatter), `dC_l = dzᵀ h_l`,
//! `dG_{l,m} = dpre_lᵀ h_m`, `dβ_l = Σ_b dpre_l`; into the weights
//! `dW1_l = dAᵀ_lᵀ W_Eᵀ + Σ_{m<l} (dG_{l,m} W2_mᵀ + dβ_l b2_mᵀ)` and
//! `dW2_m = W_E dC_m + Σ_{l>m} W1_lᵀ dG_{l,m}` (tied: the transposes join `dW1_m`).
//! Per step that is `Σ_l (4·F·D·H_l + 3·B·F·H_l) + Σ_{m<l} (3·D + 2·B)·H_l·H_m`
//! multiply-adds and sparse gathers of `nnz·H_l`: the batch meets only `F`- and
//! `H`-sized factors. (APD's 2-layer target, `F = 100, D = 1000, H_l = 25, B = 2048`:
//! about 5.5e7, against about `B·D·(3F + 6·ΣH_l) ≈ 1.2e9` for the dense loop.)
//!
//! ## What the fast path covers
//!
//! Any depth, ReLU or GELU hidden layers (GELU elementwise on the host: [`act`]), identity,
//! ReLU or GELU output, read-off loss space, any label coefficients (labels are formed on
//! the host, per active cell), biases and tied weights. The hidden-space gradient takes
//! one-block models with the L2 loss and an identity output; the others take the plain
//! forward and backward passes. The residual-space loss and a learned `σ` are computed by
//! the dense reference path ([`crate::reference`]) only; [`no_fast_path`] says so and a
//! [`FastModel`] refuses them with that line.
//!
//! ## The plan and the instance states
//!
//! What never changes (dimensions, offsets, the task, constant tables) is the [`Plan`];
//! what a step changes (parameters, gradients, Adam moments, with the fixed `W_E` and `R`)
//! lives in instance states of consecutive instances, each in its own buffers, and every
//! operation covers one state. [`FastModel::new`] makes one state of all `K` instances
//! (one launch per operation on a device). [`FastModel::new_in_states`] cuts them finer:
//! the CPU trainer keeps one instance per state and runs whole state steps (batch,
//! forward, backward, Adam) side by side on rayon's threads, each with its own
//! [`Workspace`]: an instance's working set stays in cache for its whole step, the
//! activations (and gradients) of only a few instances exist at once, and no operation
//! waits on another thread. Results are bit-identical whatever the state size and thread
//! count.
//!
//! ## Files
//!
//! Each stage's forward and backward sit side by side: [`embedding`] (the products with
//! `W_E`), [`cross`] (the factors between blocks), [`hidden`] (gather, cross products,
//! bias, activation), [`output`] (output layer and loss), [`act`] (the activations);
//! [`hidden_space`] is the fused L2 gradient, [`step`] chains them into a training step;
//! [`products`] names the batched products, [`workspace`] holds the activations and
//! [`shape`] their sizes.

mod act;
mod cross;
mod embedding;
mod hidden;
mod hidden_space;
mod output;
mod plan;
mod products;
mod shape;
mod step;
mod workspace;

#[cfg(test)]
mod tests;

use std::sync::Mutex;

use tmcc_kernels::Backend;

use plan::InstanceState;
pub use plan::Plan;
pub use shape::WorkspaceShape;
pub use workspace::{Workspace, WorkspacePool};

use crate::batch::HostBatch;
use crate::model::{Float, Model};
use crate::Error;

/// Why `cfg` has no fast path yet (one line), or `None` when it has one.
pub fn no_fast_path(cfg: &crate::Config) -> Option<String> {
    use crate::config::LossSpace;
    let missing = if cfg.loss_space != LossSpace::Readoff {
        "loss_space = resid".to_string()
    } else if cfg.learn_sigma {
        "learn_sigma = true".to_string()
    } else {
        return None;
    };
    Some(format!(
        "{missing} has no fast path yet (only the dense reference path, tmcc_model::reference, computes it)"
    ))
}

/// `K` instances living on a backend: the fixed [`Plan`] and the instances' states.
pub struct FastModel<T: Float, Bk: Backend<T>> {
    pub plan: Plan<T, Bk>,
    states: Vec<InstanceState<Bk::Buf>>,
}

impl<T: Float, Bk: Backend<T>> FastModel<T, Bk> {
    /// Uploads `model` to `bk` as one state of all instances; Adam moments start at zero.
    pub fn new(bk: Bk, model: &Model<T>) -> Result<Self, Error> {
        let k = model.cfg.instances;
        Self::new_in_states(bk, model, k, true)
    }

    /// Uploads `model` to `bk` in states of `per_state` instances (the last may hold
    /// fewer); Adam moments start at zero. Without `keep_grads` the gradients only exist
    /// inside [`train_step`](Self::train_step), in its workspaces ([`read_grads`] fails).
    ///
    /// [`read_grads`]: Self::read_grads
    pub fn new_in_states(
        bk: Bk,
        model: &Model<T>,
        per_state: usize,
        keep_grads: bool,
    ) -> Result<Self, Error> {
        let plan = Plan::new(bk, model, per_state, keep_grads)?;
        let mut states = Vec::new();
        let mut first = 0;
        while first < plan.k {
            let n = plan.per_state.min(plan.k - first);
            states.push(plan.upload_state(model, first, n)?);
            first += n;
        }
        Ok(Self { plan, states })
    }

    pub fn bk(&self) -> &Bk {
        &self.plan.bk
    }

    /// Instances `K`.
    pub fn instances(&self) -> usize {
        self.plan.k
    }

    /// Instances per state (the last state may hold fewer).
    pub fn per_state(&self) -> usize {
        self.plan.per_state
    }

    /// Number of states.
    pub fn states(&self) -> usize {
        self.states.len()
    }

    /// Whether training takes the gradient through hidden space (L2 loss, identity output;
    /// module documentation).
    pub fn hidden_space_gradient(&self) -> bool {
        self.plan.hidden_space_gradient()
    }

    /// Activations of all `K` instances for batches of `rows` samples (one state only).
    pub fn workspace(&self, rows: usize) -> Result<Workspace<T, Bk>, Error> {
        Workspace::new(&self.plan, rows, 0, self.plan.k, false)
    }

    /// A pool of workspaces for [`train_step`](Self::train_step), one per rayon thread.
    pub fn workspace_pool(&self, rows: usize) -> Result<WorkspacePool<T, Bk>, Error> {
        let plan = &self.plan;
        let threads = if self.parallel_states() {
            rayon::current_num_threads().min(self.states.len())
        } else {
            1
        };
        let mut free = Vec::new();
        for _ in 0..threads {
            free.push(Workspace::new(plan, rows, 0, plan.per_state, true)?);
        }
        if !plan.k.is_multiple_of(plan.per_state) {
            let last = self.states.last().expect("k ≥ 1");
            free.push(Workspace::new(plan, rows, last.first, last.n, true)?);
        }
        Ok(WorkspacePool {
            rows,
            free: Mutex::new(free),
        })
    }

    /// The state of the workspace's instances.
    fn state_of(&self, ws: &Workspace<T, Bk>) -> Result<usize, Error> {
        self.states
            .iter()
            .position(|s| s.first == ws.first && s.n == ws.instances)
            .ok_or_else(|| {
                Error::Shape(format!(
                    "no state of {} instances starts at instance {} (states of {})",
                    ws.instances, ws.first, self.plan.per_state
                ))
            })
    }

    /// Copies the workspace's instances of a host batch (`K` instances × `ws.rows`
    /// samples, or exactly the workspace's instances) into the workspace, with its labels.
    pub fn load_batch(&self, ws: &mut Workspace<T, Bk>, x: &HostBatch<T>) -> Result<(), Error> {
        ws.load(&self.plan, x, false)
    }

    /// The final output buffer (after the output activation): `K×B×F`.
    pub fn output<'a>(&self, ws: &'a Workspace<T, Bk>) -> &'a Bk::Buf {
        if self.plan.out_act.is_some() {
            &ws.out
        } else {
            &ws.z
        }
    }

    /// Forward pass of the loaded batch; per-sample losses scaled by `loss_scale` land in
    /// `ws.row_loss`, and with `with_grad` also `∂L/∂out` in `ws.dout`.
    pub fn forward(
        &self,
        ws: &mut Workspace<T, Bk>,
        loss_scale: T,
        with_grad: bool,
    ) -> Result<(), Error> {
        let s = self.state_of(ws)?;
        step::forward(&self.plan, &self.states[s], ws, loss_scale, with_grad)
    }

    /// Backward pass after `forward(.., with_grad = true)`: overwrites the state's
    /// gradients (all of them for a whole-`K` workspace).
    pub fn backward(&mut self, ws: &mut Workspace<T, Bk>) -> Result<(), Error> {
        let s = self.state_of(ws)?;
        step::backward(&self.plan, &mut self.states[s], ws)
    }

    fn read_all(
        &self,
        pick: impl Fn(&InstanceState<Bk::Buf>) -> &Bk::Buf,
    ) -> Result<Vec<T>, Error> {
        if let [one] = &self.states[..] {
            return Ok(self.plan.bk.read(pick(one))?);
        }
        let mut all = Vec::with_capacity(self.plan.k * self.plan.p_len);
        for st in &self.states {
            all.extend(self.plan.bk.read(pick(st))?);
        }
        Ok(all)
    }

    /// Downloads the parameters (`K × P`).
    pub fn read_params(&self) -> Result<Vec<T>, Error> {
        self.read_all(|s| &s.params)
    }

    /// Downloads the gradients of the last backward pass (models that keep them).
    pub fn read_grads(&self) -> Result<Vec<T>, Error> {
        if !self.plan.keep_grads {
            return Err(Error::State(
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
        let (n, p_len, bk) = (
            self.plan.k * self.plan.p_len,
            self.plan.p_len,
            &self.plan.bk,
        );
        if params.len() != n || m.len() != n || v.len() != n {
            return Err(Error::Shape(format!(
                "state must have {n} elements per tensor"
            )));
        }
        for st in &mut self.states {
            let r = st.first * p_len..(st.first + st.n) * p_len;
            bk.write(&mut st.params, &params[r.clone()])?;
            bk.write(&mut st.adam_m, &m[r.clone()])?;
            bk.write(&mut st.adam_v, &v[r])?;
        }
        Ok(())
    }
}
