//! What a [`FastModel`](super::FastModel) keeps fixed for its whole life (the plan) and
//! what changes with every step (one [`InstanceState`] per group of instances).
//!
//! The plan: dimensions, where each parameter tensor sits in an instance's flat buffer,
//! the task's loss and importance, and the constant tables of the hidden-space gradient.
//! An instance state: parameters, gradients, Adam moments and the fixed `W_E` (`D×F`)
//! and residual table `R` (`F×F`) of instances `first .. first + n`, in buffers of their
//! own. The CPU keeps one instance per state (states train side by side on rayon's
//! threads); a device keeps all `K` in one (one launch per operation).

use tmcc_kernels::{Backend, LossKind, View};

use super::products::Mat;
use crate::config::OutAct;
use crate::layout::{Layout, Param};
use crate::model::{Float, Model};
use crate::task::Task;
use crate::Error;

/// Offsets of the parameter tensors in an instance's flat buffer (see [`Layout`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Offsets {
    pub w1: usize,
    pub b1: Option<usize>,
    pub w2: Option<usize>,
    pub b2: Option<usize>,
}

/// The fixed part of a fast model.
pub struct Plan<T: Float, Bk: Backend<T>> {
    pub bk: Bk,
    /// Instances `K`, features `F`, hidden `H`, input width `D`, parameters per instance.
    pub k: usize,
    pub f: usize,
    pub h: usize,
    pub d: usize,
    pub p_len: usize,
    pub(super) off: Offsets,
    pub(super) embedded: bool,
    pub(super) out_relu: bool,
    pub(super) task: Task,
    pub(super) loss: LossKind,
    /// `imp` (`F`), shared by all instances.
    pub(super) importance: Bk::Buf,
    /// `diag(imp)` (`F×F`), when the hidden-space gradient applies.
    pub(super) diag_imp: Option<Bk::Buf>,
    /// `I_H` (`H×H`) without an embedding: `Aᵀ = W1ᵀ` and `dW1 = dAᵀᵀ` are products with
    /// it, so that the gather and scatter of `x` run over contiguous rows of `Aᵀ`.
    pub(super) eye_h: Option<Bk::Buf>,
    /// Instances per state (the last state may hold fewer).
    pub(super) per_state: usize,
    /// Whether each state keeps its gradients; otherwise a training step borrows its
    /// workspace's gradient buffer (less memory, and no gradient ever leaves the cache).
    pub(super) keep_grads: bool,
}

/// The changing part of consecutive instances `first .. first + n`.
pub(super) struct InstanceState<B> {
    pub first: usize,
    pub n: usize,
    /// `n × P` each.
    pub params: B,
    pub grads: B,
    pub adam_m: B,
    pub adam_v: B,
    /// `n × D×F`, embedding variants.
    pub embed: Option<B>,
    /// `n × F×F`, residual variants.
    pub resid: Option<B>,
}

impl<T: Float, Bk: Backend<T>> Plan<T, Bk> {
    pub(super) fn new(
        bk: Bk,
        model: &Model<T>,
        per_state: usize,
        keep_grads: bool,
    ) -> Result<Self, Error> {
        let cfg = &model.cfg;
        if let Some(why) = super::no_fast_path(cfg) {
            return Err(Error::State(why));
        }
        let (k, f, h) = (cfg.instances, cfg.n_feat, cfg.n_hidden);
        let layout: &Layout = &model.layout;
        let task = cfg.task();
        let loss = task.loss_kind();
        let importance: Vec<T> = task.importance_as();
        let out_relu = cfg.out_act == OutAct::Relu;
        let diag_imp = if loss == LossKind::L2 && !out_relu {
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
        let slot = |p: Param| layout.get(p).map(|s| s.offset);
        Ok(Self {
            k,
            f,
            h,
            d: cfg.d_in(),
            p_len: layout.len,
            off: Offsets {
                w1: layout.offset(Param::W1),
                b1: slot(Param::B1),
                w2: slot(Param::W2),
                b2: slot(Param::B2),
            },
            embedded: model.embed.is_some(),
            out_relu,
            task,
            loss,
            importance: bk.upload(&importance)?,
            diag_imp,
            eye_h,
            per_state: per_state.clamp(1, k.max(1)),
            keep_grads,
            bk,
        })
    }

    /// Uploads the state of instances `first .. first + n` of `model`; Adam moments start
    /// at zero.
    pub(super) fn upload_state(
        &self,
        model: &Model<T>,
        first: usize,
        n: usize,
    ) -> Result<InstanceState<Bk::Buf>, Error> {
        let (bk, p_len, fd) = (&self.bk, self.p_len, self.d * self.f);
        let embed = match &model.embed {
            Some(e) => Some(bk.upload(&e[first * fd..(first + n) * fd])?),
            None => None,
        };
        let resid = match model.cfg.variant.has_residual() {
            true => {
                let r: Vec<T> = (first..first + n)
                    .flat_map(|i| model.residual_table(i).expect("residual variant"))
                    .collect();
                Some(bk.upload(&r)?)
            }
            false => None,
        };
        Ok(InstanceState {
            first,
            n,
            params: bk.upload(&model.params[first * p_len..(first + n) * p_len])?,
            grads: bk.zeros(if self.keep_grads { n * p_len } else { 0 })?,
            adam_m: bk.zeros(n * p_len)?,
            adam_v: bk.zeros(n * p_len)?,
            embed,
            resid,
        })
    }

    /// Whether training takes the gradient through hidden space (L2 loss, identity
    /// output; see the module documentation of [`super`]).
    pub fn hidden_space_gradient(&self) -> bool {
        self.diag_imp.is_some()
    }

    /// A parameter tensor at `offset` as a `rows×cols` matrix, one block per instance.
    pub(super) fn param(&self, offset: usize, rows: usize, cols: usize) -> Mat {
        Mat::at(self.param_view(offset), rows, cols)
    }

    /// The view of the parameter tensor at `offset`, one block per instance.
    pub(super) fn param_view(&self, offset: usize) -> View {
        View::new(offset, self.p_len)
    }

    /// `W1` (`H×D`).
    pub(super) fn w1(&self) -> Mat {
        self.param(self.off.w1, self.h, self.d)
    }

    /// `C` (`F×H`), the matrix that takes `h` to the output in feature space, and its
    /// buffer: `W_EᵀW2` (or `Aᵀ` when tied) with an embedding, else `W2` (`D×H = F×H`),
    /// or `W1ᵀ` when tied. `a_t` and `c_mat` are the workspace's products.
    pub(super) fn c_operand<'a>(
        &self,
        params: &'a Bk::Buf,
        a_t: &'a Bk::Buf,
        c_mat: &'a Bk::Buf,
    ) -> (&'a Bk::Buf, Mat) {
        let fh = Mat::packed(self.f, self.h);
        match (self.embedded, self.off.w2) {
            (true, Some(_)) => (c_mat, fh),
            (true, None) => (a_t, fh),
            (false, Some(off)) => (params, self.param(off, self.f, self.h)),
            (false, None) => (params, self.w1().t()),
        }
    }

    /// `c` (`F`), the output bias in feature space, and its buffer: `W_Eᵀb2` (the
    /// workspace's `c_vec`) with an embedding, else `b2`; `None` without `b2`.
    pub(super) fn c_bias<'a>(
        &self,
        params: &'a Bk::Buf,
        c_vec: &'a Bk::Buf,
    ) -> Option<(&'a Bk::Buf, Mat)> {
        match (self.embedded, self.off.b2) {
            (true, Some(_)) => Some((c_vec, Mat::packed(self.f, 1))),
            (false, Some(off)) => Some((params, self.param(off, self.f, 1))),
            _ => None,
        }
    }
}
