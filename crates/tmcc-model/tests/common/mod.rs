//! Shared helpers of the model crate's integration tests.
#![allow(dead_code)]

use ndarray::ArrayView2;
use proptest::prelude::*;
use tmcc_model::batch::{HostBatch, Sampler};
use tmcc_model::config::{
    Act, Config, DataMode, LabelCoeffs, Labels, LossName, LossSpace, Mixing, OutAct, Values,
    Variant,
};
use tmcc_model::data::DataSpec;
use tmcc_model::init::{rng, Stream};
use tmcc_model::{reference, Float, Model, Param};

/// The task options of crate::data drawn for a config: labels, values, data mode (with
/// `k`), whether importance is a decay, and (one in four) a linear hidden layer
/// (`act = identity`, the toy models of superposition).
#[derive(Clone, Debug)]
pub struct TaskOptions {
    pub labels: Labels,
    pub values: Values,
    pub data: DataMode,
    pub k_seed: usize,
    pub decay: bool,
    pub identity_act: bool,
}

pub fn arb_task_options() -> impl Strategy<Value = TaskOptions> {
    (
        0usize..3,
        any::<bool>(),
        0usize..3,
        0usize..64,
        any::<bool>(),
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(labels, unsigned, data, k_seed, decay, identity_act)| TaskOptions {
                labels: [Labels::ActPlusResid, Labels::Abs, Labels::Relu][labels],
                values: if unsigned {
                    Values::Unsigned
                } else {
                    Values::Signed
                },
                data: [
                    DataMode::Bernoulli,
                    DataMode::AtLeastOne,
                    DataMode::ExactlyK,
                ][data],
                k_seed,
                decay,
                identity_act,
            },
        )
}

/// `cfg` with the task options `t`: exactly-`k` data takes `k = 1 + k_seed % F` and leaves
/// `p` at its default; a decay replaces an importance list (not with the residual-space
/// loss); `abs`/`relu` labels without a residual stream leave `res_factor` unset.
pub fn with_task_options(mut cfg: Config, t: &TaskOptions) -> Config {
    cfg.labels = t.labels;
    cfg.values = t.values;
    if t.identity_act {
        cfg.act = Act::Identity;
    }
    cfg.data = t.data;
    if t.data == DataMode::ExactlyK {
        cfg.exactly_k = Some(1 + t.k_seed % cfg.n_feat);
        cfg.p = Config::default().p;
        cfg.p_per_instance.clear();
    }
    if t.decay && cfg.loss_space == LossSpace::Readoff {
        cfg.importance.clear();
        cfg.importance_decay = Some(0.7);
    }
    if t.labels != Labels::ActPlusResid && !cfg.variant.has_residual() {
        cfg.res_factor = None;
    }
    cfg.validate().expect("a drawn config is valid");
    cfg
}

/// The range of [`arb_deep_config`]: features in `2..max_feat`, block widths in
/// `1..max_width`, `instances` side by side, and whether the residual-space loss is drawn
/// (the fast path has none; it then comes with identity output and no importance).
pub struct DeepRange {
    pub max_feat: usize,
    pub max_width: usize,
    pub instances: usize,
    pub resid: bool,
}

/// A small residual MLP of 1–3 blocks of their own widths with every option of APD's
/// targets: ReLU or GELU hidden layers, any output activation, label coefficients, L1 or
/// L2, biases, tying, importance and (if `range.resid`) the residual-space loss, over every
/// variant with a residual stream; with every label, value law, data mode and importance
/// decay ([`with_task_options`]).
pub fn arb_deep_config(range: DeepRange) -> impl Strategy<Value = Config> {
    let shape = (
        0usize..4,
        2usize..range.max_feat,
        prop::collection::vec(1usize..range.max_width, 1..4),
        0usize..6,
        1usize..6,
    );
    let flags = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let values = (-0.5f64..1.5, 0u64..1_000_000, 0u64..1000, 0usize..3);
    (shape, flags, values, arb_task_options()).prop_map(
        move |(
            (v, f, widths, extra_d, b),
            (b1, b2, tied, gelu, random_c, imp, resid, l1),
            (r, seed, label_seed, out),
            task,
        )| {
            let variant = [
                Variant::ResMlp,
                Variant::EmbRes,
                Variant::EmbResOrth,
                Variant::Mix,
            ][v];
            let resid = range.resid && resid && variant != Variant::Mix;
            let cfg = Config {
                variant,
                n_feat: f,
                n_layers: widths.len(),
                // One block: its width is n_hidden (d_mlp stays empty).
                n_hidden: widths[0],
                d_mlp: if widths.len() > 1 { widths } else { Vec::new() },
                d_emb: f + extra_d,
                p: 0.6,
                res_factor: Some(r),
                mixing: Mixing::Asymmetric,
                sigma: 0.3,
                bias1: b1,
                bias2: b2,
                tied,
                act: if gelu { Act::Gelu } else { Act::Relu },
                out_act: match (resid, out) {
                    (true, _) | (_, 0) => OutAct::Identity,
                    (_, 1) => OutAct::Relu,
                    _ => OutAct::Gelu,
                },
                label_coeffs: if random_c {
                    LabelCoeffs::Uniform
                } else {
                    LabelCoeffs::Trivial
                },
                label_seed,
                loss: if l1 { LossName::L1 } else { LossName::L2 },
                loss_space: if resid {
                    LossSpace::Resid
                } else {
                    LossSpace::Readoff
                },
                importance: if imp && !resid {
                    (0..f).map(|i| 0.5 + 0.25 * i as f64).collect()
                } else {
                    Vec::new()
                },
                batch_size: b,
                instances: range.instances,
                seed,
                ..Config::default()
            };
            with_task_options(cfg, &task)
        },
    )
}

/// A small config of any variant, loss, bias, tying, output activation, mixing and label
/// coefficients (one block, ReLU, read-off loss: what the fast path covers), with every
/// label, value law, data mode and importance decay ([`with_task_options`]).
pub fn arb_config() -> impl Strategy<Value = Config> {
    let shape = (0usize..6, 2usize..7, 1usize..5, 0usize..6, 1usize..6);
    let flags = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let values = (
        prop::sample::select(vec![0.25, 0.6, 1.0]),
        -1.0f64..1.5,
        0usize..5,
        -0.6f64..0.6,
        0u64..1_000_000,
        any::<bool>(),
        any::<bool>(),
    );
    (shape, flags, values, arb_task_options()).prop_map(
        |(
            (v, f, h, extra_d, b),
            (b1, b2, tied, relu_out, l1),
            (p, r, mix, sigma, seed, imp, random_c),
            task,
        )| {
            let variant = Variant::ALL[v];
            let cfg = Config {
                variant,
                n_feat: f,
                n_hidden: h,
                d_emb: f + extra_d,
                p,
                res_factor: Some(r),
                mixing: [
                    Mixing::Symmetric,
                    Mixing::Asymmetric,
                    Mixing::Rank,
                    Mixing::EmbeddingPlus,
                    Mixing::EmbeddingMinus,
                ][mix],
                sigma,
                mix_rank: (f / 2).max(1),
                mix_d_emb: 5,
                bias1: b1,
                bias2: b2,
                tied,
                out_act: if relu_out {
                    OutAct::Relu
                } else {
                    OutAct::Identity
                },
                loss: if l1 { LossName::L1 } else { LossName::L2 },
                importance: if imp {
                    (0..f).map(|i| 0.5 + 0.25 * i as f64).collect()
                } else {
                    Vec::new()
                },
                label_coeffs: if random_c {
                    LabelCoeffs::Uniform
                } else {
                    LabelCoeffs::Trivial
                },
                label_seed: seed % 7,
                batch_size: b,
                seed,
                instances: 2,
                sigma_per_instance: vec![sigma, -0.5 * sigma],
                ..Config::default()
            };
            with_task_options(cfg, &task)
        },
    )
}

/// Makes the biases non-zero so that their paths are exercised.
pub fn perturb_biases<T: Float>(m: &mut Model<T>) {
    for k in 0..m.instances() {
        for name in [Param::B1, Param::B2] {
            for s in m.layout.slots.clone().iter().filter(|s| s.param == name) {
                let base = k * m.layout.len + s.offset;
                for i in 0..s.len {
                    m.params[base + i] = T::from_f64(0.1 * ((i * 7 + k * 3) % 5) as f64 - 0.2);
                }
            }
        }
    }
}

/// The training batch the fast path would draw first.
pub fn first_batch<T: Float>(cfg: &Config) -> HostBatch<T> {
    let rngs = (0..cfg.instances)
        .map(|k| rng(cfg.instance_seed(k), Stream::Data))
        .collect();
    let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
    let mut s = Sampler::new(rngs, ps).with_data(DataSpec::of(cfg));
    let mut b = HostBatch::default();
    s.sample(cfg.batch_size, cfg.n_feat, &mut b);
    b
}

pub fn ref_loss<T: Float>(m: &Model<T>, k: usize, x: &[T]) -> f64 {
    let x = ArrayView2::from_shape((m.cfg.batch_size, m.cfg.n_feat), x).unwrap();
    reference::forward_backward(m, k, x, false).loss.as_f64()
}

pub fn to_f64<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.as_f64()).collect()
}
