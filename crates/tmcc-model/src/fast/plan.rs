//! What a [`FastModel`](super::FastModel) keeps fixed for its whole life (the plan) and
//! what changes with every step (one [`InstanceState`] per group of instances).
//!
//! The plan: dimensions, where each block's parameter tensors sit in an instance's flat
//! buffer ([`BlockPlan`]), the activations, the task's loss and importance, and the
//! constant tables of the hidden-space gradient.
//! An instance state: parameters, gradients, Adam moments and the fixed `W_E` (`D×F`)
//! and residual table `R` (`F×F`) of instances `first .. first + n`, in buffers of their
//! own. The CPU keeps one instance per state (states train side by side on rayon's
//! threads); a device keeps all `K` in one (one launch per operation).

use tmcc_kernels::{Backend, LossKind, View};

use super::products::Mat;
use crate::act::Act;
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

/// One residual block `l` of the plan: its width `H_l`, its tensors' offsets and, without
/// an embedding, `I_{H_l}` (`Aᵀ_l = W1_lᵀ` and `dW1_l = dAᵀ_lᵀ` are products with it, so
/// that the gather and scatter of `x` run over contiguous rows of `Aᵀ_l`).
pub(super) struct BlockPlan<B> {
    pub h: usize,
    pub off: Offsets,
    pub eye: Option<B>,
}

/// The fixed part of a fast model.
pub struct Plan<T: Float, Bk: Backend<T>> {
    pub bk: Bk,
    /// Instances `K`, features `F`, input width `D`, parameters per instance.
    pub k: usize,
    pub f: usize,
    pub d: usize,
    pub p_len: usize,
    /// The residual blocks, in order (`L ≥ 1`).
    pub(super) blocks: Vec<BlockPlan<Bk::Buf>>,
    pub(super) embedded: bool,
    /// The hidden activation and the output activation (`None`: identity).
    pub(super) act: Act,
    pub(super) out_act: Option<Act>,
    pub(super) task: Task,
    pub(super) loss: LossKind,
    /// `imp` (`F`), shared by all instances.
    pub(super) importance: Bk::Buf,
    /// `diag(imp)` (`F×F`), when the hidden-space gradient applies.
    pub(super) diag_imp: Option<Bk::Buf>,
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

/// Whether `cfg` trains through hidden space: one block, L2 loss, identity output.
pub(super) fn hidden_space_applies(cfg: &crate::Config) -> bool {
    cfg.n_layers == 1 && cfg.loss == crate::config::LossName::L2 && cfg.out_activation().is_none()
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
        let (k, f) = (cfg.instances, cfg.n_feat);
        let layout: &Layout = &model.layout;
        let task = cfg.task();
        let loss = task.loss_kind();
        let importance: Vec<T> = task.importance_as();
        let out_act = cfg.out_activation();
        let widths = cfg.widths();
        let diag_imp = if hidden_space_applies(cfg) {
            let mut diag = vec![T::zero(); f * f];
            for (i, &w) in importance.iter().enumerate() {
                diag[i * f + i] = w;
            }
            Some(bk.upload(&diag)?)
        } else {
            None
        };
        let mut blocks = Vec::with_capacity(widths.len());
        for (l, &h) in widths.iter().enumerate() {
            let eye = if model.embed.is_none() {
                let mut eye = vec![T::zero(); h * h];
                for i in 0..h {
                    eye[i * h + i] = T::one();
                }
                Some(bk.upload(&eye)?)
            } else {
                None
            };
            let slot = |p: Param| layout.get_in(l, p).map(|s| s.offset);
            let off = Offsets {
                w1: slot(Param::W1).expect("every block has W1"),
                b1: slot(Param::B1),
                w2: slot(Param::W2),
                b2: slot(Param::B2),
            };
            blocks.push(BlockPlan { h, off, eye });
        }
        Ok(Self {
            k,
            f,
            d: cfg.d_in(),
            p_len: layout.len,
            blocks,
            embedded: model.embed.is_some(),
            act: cfg.act,
            out_act,
            task,
            loss,
            importance: bk.upload(&importance)?,
            diag_imp,
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

    /// Whether training takes the gradient through hidden space (one block, L2 loss,
    /// identity output; see the module documentation of [`super`]).
    pub fn hidden_space_gradient(&self) -> bool {
        self.diag_imp.is_some()
    }

    /// The width `H_l` of block `l`.
    pub(super) fn h(&self, l: usize) -> usize {
        self.blocks[l].h
    }

    /// Block `l`'s tensor offsets.
    pub(super) fn off(&self, l: usize) -> Offsets {
        self.blocks[l].off
    }

    /// A parameter tensor at `offset` as a `rows×cols` matrix, one block per instance.
    pub(super) fn param(&self, offset: usize, rows: usize, cols: usize) -> Mat {
        Mat::at(self.param_view(offset), rows, cols)
    }

    /// The view of the parameter tensor at `offset`, one block per instance.
    pub(super) fn param_view(&self, offset: usize) -> View {
        View::new(offset, self.p_len)
    }

    /// Block `l`'s `W1_l` (`H_l×D`).
    pub(super) fn w1(&self, l: usize) -> Mat {
        self.param(self.off(l).w1, self.h(l), self.d)
    }

    /// Block `l`'s `W2_l` (`D×H_l`) and its buffer: the parameter, or `W1_lᵀ` when tied.
    pub(super) fn w2(&self, l: usize) -> Mat {
        match self.off(l).w2 {
            Some(off) => self.param(off, self.d, self.h(l)),
            None => self.w1(l).t(),
        }
    }

    /// `C_l` (`F×H_l`), the matrix that takes `h_l` to the output in feature space, and its
    /// buffer: `W_EᵀW2_l` (or `Aᵀ_l` when tied) with an embedding, else `W2_l`
    /// (`D×H_l = F×H_l`), or `W1_lᵀ` when tied. `a_t` and `c_mat` are block `l`'s
    /// workspace products.
    pub(super) fn c_operand<'a>(
        &self,
        l: usize,
        params: &'a Bk::Buf,
        a_t: &'a Bk::Buf,
        c_mat: &'a Bk::Buf,
    ) -> (&'a Bk::Buf, Mat) {
        let fh = Mat::packed(self.f, self.h(l));
        match (self.embedded, self.off(l).w2) {
            (true, Some(_)) => (c_mat, fh),
            (true, None) => (a_t, fh),
            (false, _) => (params, self.w2(l)),
        }
    }

    /// `c_l` (`F`), block `l`'s output bias in feature space, and its buffer: `W_Eᵀb2_l`
    /// (the workspace's `c_vec`) with an embedding, else `b2_l`; `None` without `b2`.
    pub(super) fn c_bias<'a>(
        &self,
        l: usize,
        params: &'a Bk::Buf,
        c_vec: &'a Bk::Buf,
    ) -> Option<(&'a Bk::Buf, Mat)> {
        match (self.embedded, self.off(l).b2) {
            (true, Some(_)) => Some((c_vec, Mat::packed(self.f, 1))),
            (false, Some(off)) => Some((params, self.param(off, self.f, 1))),
            _ => None,
        }
    }
}
