//! One training step of every instance: the gradient of each state (through hidden space
//! where that applies, else the plain forward and backward passes), then its Adam update,
//! state by state, side by side on rayon's threads when the backend runs instances in
//! parallel. With losses asked for, every instance's batch loss is measured first (plain
//! forward pass) and a non-finite one stops the step before any instance is updated.

use rayon::prelude::*;
use tmcc_kernels::{AdamSpec, Backend};

use super::plan::{InstanceState, Plan};
use super::workspace::{Workspace, WorkspacePool};
use super::{cross, embedding, hidden, hidden_space, output, FastModel};
use crate::batch::HostBatch;
use crate::model::Float;
use crate::Error;

/// The plain forward pass of the loaded batch: weight products, every block's `h_l`,
/// output and loss.
pub(super) fn forward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
    loss_scale: T,
    with_grad: bool,
) -> Result<(), Error> {
    embedding::forward(plan, st, ws)?;
    cross::forward(plan, st, ws)?;
    hidden::forward(plan, st, ws)?;
    output::forward(plan, st, ws, loss_scale, with_grad)
}

/// The plain backward pass after `forward(.., with_grad = true)`: overwrites the state's
/// gradients.
pub(super) fn backward<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
) -> Result<(), Error> {
    output::backward(plan, st, ws)?;
    hidden::backward(plan, st, ws)?;
    embedding::backward(plan, st, ws)?;
    cross::backward(plan, st, ws)
}

/// The gradient of the state on its part of `batch` (all `K` instances), into the
/// state's gradients.
pub(super) fn gradient<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
    batch: &HostBatch<T>,
    loss_scale: T,
) -> Result<(), Error> {
    debug_assert!(plan.bk.len(&st.grads) == st.n * plan.p_len);
    if plan.hidden_space_gradient() {
        ws.load(plan, batch, true)?;
        hidden_space::gradient(plan, st, ws, loss_scale)
    } else {
        ws.load(plan, batch, false)?;
        forward(plan, st, ws, loss_scale, true)?;
        backward(plan, st, ws)
    }
}

/// The batch loss of every instance of the state (the plain forward pass), summed over
/// its samples, into `out`.
fn losses<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &InstanceState<Bk::Buf>,
    ws: &mut Workspace<T, Bk>,
    batch: &HostBatch<T>,
    loss_scale: T,
    out: &mut [f64],
) -> Result<(), Error> {
    ws.load(plan, batch, false)?;
    forward(plan, st, ws, loss_scale, false)?;
    let rl = plan.bk.read(&ws.row_loss)?;
    for (o, c) in out.iter_mut().zip(rl.chunks_exact(ws.rows.max(1))) {
        *o = c.iter().map(|v| v.as_f64()).sum();
    }
    Ok(())
}

/// One Adam/AdamW update of the state with its current gradients.
pub(super) fn adam<T: Float, Bk: Backend<T>>(
    plan: &Plan<T, Bk>,
    st: &mut InstanceState<Bk::Buf>,
    spec: &AdamSpec<T>,
) -> Result<(), Error> {
    let (params, adam_m, adam_v) = (&mut st.params, &mut st.adam_m, &mut st.adam_v);
    plan.bk.adam(spec, params, &st.grads, adam_m, adam_v)?;
    Ok(())
}

/// `f` on every state, side by side on rayon's threads when `parallel`.
fn for_states<B: Send>(
    parallel: bool,
    states: &mut [InstanceState<B>],
    f: impl Fn(&mut InstanceState<B>) -> Result<(), Error> + Sync + Send,
) -> Result<(), Error> {
    if parallel {
        states.par_iter_mut().try_for_each(f)
    } else {
        states.iter_mut().try_for_each(f)
    }
}

impl<T: Float, Bk: Backend<T>> FastModel<T, Bk> {
    /// Whether the states of a training step run side by side on rayon's threads.
    pub(super) fn parallel_states(&self) -> bool {
        self.states.len() > 1 && self.plan.bk.parallel_instances()
    }

    /// One training step of every instance on `batch` (`K` instances × `pool`'s rows):
    /// gradient and Adam update `adam`, state by state (side by side on rayon's threads on
    /// the CPU). With `losses`, every instance's batch loss goes there first (`K`
    /// entries, summed over the batch; the plain forward pass), and a non-finite one
    /// stops the step before any instance is updated ([`Error::NonFinite`] with `step` 0:
    /// the caller fills it in). The weights do not depend on the state size or on whether
    /// losses were asked for.
    pub fn train_step(
        &mut self,
        pool: &WorkspacePool<T, Bk>,
        batch: &HostBatch<T>,
        loss_scale: T,
        adam_spec: &AdamSpec<T>,
        losses_out: Option<&mut [f64]>,
    ) -> Result<(), Error> {
        let parallel = self.parallel_states();
        let (plan, states) = (&self.plan, &mut self.states);
        let per_state = plan.per_state;
        // The gradient of a state (in its workspace's buffer unless the state keeps its
        // own), then, with `spec`, its update; or, with `loss_into`, only its losses.
        let run = |st: &mut InstanceState<Bk::Buf>,
                   spec: Option<&AdamSpec<T>>,
                   loss_into: Option<&mut [f64]>|
         -> Result<(), Error> {
            let mut ws = pool.take(plan, st.first, st.n)?;
            let r = match loss_into {
                Some(out) => losses(plan, st, &mut ws, batch, loss_scale, out),
                None => {
                    if !plan.keep_grads {
                        std::mem::swap(&mut st.grads, &mut ws.grads);
                    }
                    let r = gradient(plan, st, &mut ws, batch, loss_scale);
                    let r = r.and_then(|()| match spec {
                        Some(spec) => adam(plan, st, spec),
                        None => Ok(()),
                    });
                    if !plan.keep_grads {
                        std::mem::swap(&mut st.grads, &mut ws.grads);
                    }
                    r
                }
            };
            pool.put(ws);
            r
        };
        let update = |st: &mut InstanceState<Bk::Buf>| run(st, Some(adam_spec), None);
        match losses_out {
            None => for_states(parallel, states, update),
            Some(out) => {
                // Losses of every instance first: a non-finite one stops the step before
                // any instance is updated.
                let r = if parallel {
                    states
                        .par_iter_mut()
                        .zip(out.par_chunks_mut(per_state))
                        .try_for_each(|(st, o)| run(st, None, Some(o)))
                } else {
                    states
                        .iter_mut()
                        .zip(out.chunks_mut(per_state))
                        .try_for_each(|(st, o)| run(st, None, Some(o)))
                };
                r?;
                match out.iter().position(|l| !l.is_finite()) {
                    Some(instance) => Err(Error::NonFinite {
                        step: 0,
                        instance,
                        value: out[instance],
                    }),
                    None => for_states(parallel, states, update),
                }
            }
        }
    }

    /// One Adam/AdamW update of every instance with the current gradients.
    pub fn adam_step(&mut self, spec: &AdamSpec<T>) -> Result<(), Error> {
        let plan = &self.plan;
        self.states
            .iter_mut()
            .try_for_each(|st| adam(plan, st, spec))
    }
}
