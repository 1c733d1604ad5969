//! The sizes of a [`Workspace`](super::Workspace) before any exists: what the memory estimate
//! ([`crate::memory`]) counts, checked against what a workspace allocates.
//!
//! Per instance and batch of `B` rows, with block widths `H_l`: the blocks' `h_l`, `dh_l`
//! (and `pre_l` with GELU) are `B×H_l`; their products `Aᵀ_l`, `dAᵀ_l` (and with an
//! embedding `C_l`, `dC_l`, `c_l`, `dc_l`) are `F×H_l` (`F`); the cross-block factors
//! `G_{l,m}`, `dG_{l,m}` are `H_l×H_m` for `m < l`, and `β_l`, `dβ_l` are `H_l` (with
//! `b2`, `l ≥ 1`); `z`, `dout` (and `out` with an output activation) are `B×F`.

/// What sets the sizes of a [`Workspace`](super::Workspace): the plan's dimensions and flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceShape {
    /// Features `F`, the block widths `H_l`, parameters per instance `P`.
    pub f: usize,
    pub widths: Vec<usize>,
    pub p_len: usize,
    pub embedded: bool,
    pub bias2: bool,
    /// GELU hidden layers (keep `pre_l`), an output activation (keep `out`).
    pub gelu: bool,
    pub out_act: bool,
    pub hidden_space: bool,
    pub keep_grads: bool,
}

impl WorkspaceShape {
    /// The shape a trainer's plan gives `cfg` (gradients live in the workspaces) with
    /// `p_len` parameters per instance.
    pub fn of(cfg: &crate::Config, p_len: usize) -> Self {
        Self {
            f: cfg.n_feat,
            widths: cfg.widths(),
            p_len,
            embedded: cfg.variant.has_embedding(),
            bias2: cfg.bias2,
            gelu: cfg.act == crate::act::Act::Gelu,
            out_act: cfg.out_activation().is_some(),
            hidden_space: super::plan::hidden_space_applies(cfg),
            keep_grads: false,
        }
    }

    /// Elements (4 bytes each: values and indices) of a workspace of `n` instances and
    /// `rows` rows holding a batch of `nnz` non-zeros, as the workspace allocates them
    /// when made and loaded.
    pub fn elements(&self, rows: usize, n: usize, training: bool, nnz: usize) -> usize {
        let (f, nr) = (self.f, n * rows);
        let emb = |len: usize| if self.embedded { len } else { 0 };
        let hidden_space = training && self.hidden_space;
        // x, y and −y (hidden space): offsets, and a column and a value per non-zero
        let csr = 3 * (nr + 1) + 2 * nnz * if hidden_space { 3 } else { 2 };
        let mut blocks = 0;
        for (l, &h) in self.widths.iter().enumerate() {
            let acts = nr * h * if self.gelu { 3 } else { 2 };
            let products = 2 * n * (f * h + emb(f * h + f));
            let earlier: usize = self.widths[..l].iter().sum();
            let cross = 2 * n * h * earlier;
            let beta = if l > 0 && self.bias2 { 2 * n * h } else { 0 };
            blocks += acts + products + cross + beta;
        }
        let outputs = nr * (2 * f + 1) + if self.out_act { nr * f } else { 0 };
        let grads = if training && !self.keep_grads {
            n * self.p_len
        } else {
            0
        };
        let h = self.widths[0];
        let tables = if hidden_space {
            n * (4 * f * h + 2 * h * h + 2 * h + 2 * f) + nr.max(1)
        } else {
            0
        };
        csr + blocks + outputs + grads + tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{HostBatch, Sampler};
    use crate::fast::Workspace;
    use crate::init::{rng, Stream};
    use crate::{Config, Model};
    use tmcc_kernels::cpu::Cpu;
    use tmcc_kernels::Csr;

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
        let blocks: usize = ws
            .blocks
            .iter()
            .map(|b| {
                [
                    &b.h, &b.dh, &b.pre, &b.a_t, &b.c_mat, &b.c_vec, &b.d_a_t, &b.d_c_mat,
                    &b.d_c_vec, &b.beta, &b.d_beta,
                ]
                .iter()
                .map(|v| v.len())
                .sum::<usize>()
                    + b.g.iter().chain(&b.d_g).map(|v| v.len()).sum::<usize>()
            })
            .sum();
        csr(&ws.x)
            + csr(&ws.y)
            + csr(&ws.neg_y)
            + [&ws.z, &ws.out, &ws.dout, &ws.row_loss, &ws.grads]
                .iter()
                .map(|b| b.len())
                .sum::<usize>()
            + blocks
            + tables
    }

    /// The declared sizes are what a workspace allocates, for every variant, depth and
    /// activation, with and without training, after a batch is loaded.
    #[test]
    fn declared_sizes_match_the_buffers() {
        for (variant, settings) in [
            ("emb_res", ""),
            ("mlp", "out_act = \"relu\""),
            ("mix", ""),
            ("emb_mlp", "out_act = \"relu\""),
            ("emb_res", "n_layers = 3\nd_mlp = [4, 2, 3]\nact = \"gelu\""),
            ("res_mlp", "n_layers = 2\nout_act = \"gelu\"\ntied = true"),
        ] {
            let mut cfg = Config::from_toml_str(settings).unwrap();
            cfg.n_feat = 9;
            cfg.n_hidden = 4;
            cfg.d_emb = 12;
            cfg.p = 0.3;
            cfg.instances = 3;
            cfg.bias2 = true;
            cfg.set_str("variant", variant).unwrap();
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
                let what = format!("{variant} {settings}");
                assert_eq!(
                    allocated(&ws),
                    shape.elements(rows, 3, training, 0),
                    "{what}"
                );
                ws.load(&fast.plan, &batch, training && shape.hidden_space)
                    .unwrap();
                let nnz = batch.col.len();
                assert!(nnz > 0);
                assert_eq!(
                    allocated(&ws),
                    shape.elements(rows, 3, training, nnz),
                    "{what}"
                );
            }
        }
    }
}
