//! The fast path's own checks: the hidden-space gradient against the plain one (f64,
//! every variant and option; f32 at the seed setting against f64), and training in
//! states of any size against one state.

use super::step;
use super::*;
use crate::batch::Sampler;
use crate::config::{Config, Mixing, Variant};
use crate::init::{rng, Stream};
use crate::layout::Param;
use crate::optim::adam_spec;
use proptest::prelude::*;
use tmcc_kernels::cpu::Cpu;
use tmcc_testkit::rel_err;

fn batch<T: Float>(cfg: &Config) -> HostBatch<T> {
    let rngs = (0..cfg.instances)
        .map(|k| rng(cfg.instance_seed(k), Stream::Data))
        .collect();
    let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
    let mut b = HostBatch::default();
    Sampler::new(rngs, ps)
        .with_data(crate::data::DataSpec::of(cfg))
        .sample(cfg.batch_size, cfg.n_feat, &mut b);
    b
}

/// (plain gradient, hidden-space gradient) of the first batch, in f64.
fn both_gradients(cfg: &Config) -> (Vec<f64>, Vec<f64>) {
    let mut m = Model::<f64>::new(cfg).unwrap();
    for k in 0..cfg.instances {
        for name in [Param::B1, Param::B2] {
            if let Some(s) = m.layout.get(name).cloned() {
                for i in 0..s.len {
                    m.params[k * m.layout.len + s.offset + i] = 0.05 * ((i + k) % 5) as f64 - 0.1;
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
    let mut ws = Workspace::new(&fast.plan, cfg.batch_size, 0, cfg.instances, true).unwrap();
    step::gradient(&fast.plan, &mut fast.states[0], &mut ws, &x, scale).unwrap();
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
    let mut ws = Workspace::new(&fast.plan, cfg.batch_size, 0, cfg.instances, true).unwrap();
    fast.load_batch(&mut ws, x).unwrap();
    fast.forward(&mut ws, scale, true).unwrap();
    fast.backward(&mut ws).unwrap();
    let plain = fast.read_grads().unwrap();
    step::gradient(&fast.plan, &mut fast.states[0], &mut ws, x, scale).unwrap();
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
            m.params = t.read_params().unwrap();
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
            eprintln!("{variant:?} after {steps} steps: plain f32 {ep:.2e}, hidden f32 {eh:.2e}");
            assert!(
                ep < 1e-5 && eh < 1e-5,
                "{variant:?} after {steps}: {ep} {eh}"
            );
        }
    }
}

/// Training in states of any size, side by side, gives bit-identical weights to one
/// state of all instances.
#[test]
fn states_do_not_change_the_result() {
    for (variant, n_layers) in [
        (Variant::EmbRes, 1),
        (Variant::Mix, 1),
        (Variant::Mlp, 1),
        (Variant::EmbRes, 3),
    ] {
        let cfg = Config {
            variant,
            n_layers,
            n_feat: 12,
            n_hidden: 5,
            d_emb: 30,
            p: 0.1,
            batch_size: 16,
            instances: 5,
            bias1: true,
            bias2: n_layers > 1,
            act: if n_layers > 1 {
                crate::act::Act::Gelu
            } else {
                crate::act::Act::Relu
            },
            ..Config::default()
        };
        let m = Model::<f32>::new(&cfg).unwrap();
        let x = batch::<f32>(&cfg);
        let run = |shard: usize, want_loss: bool| {
            let mut fast = FastModel::new_in_states(Cpu, &m, shard, false).unwrap();
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
            assert_eq!(run(shard, false), one, "{variant:?} states of {shard}");
            assert_eq!(
                run(shard, true),
                one,
                "{variant:?} states of {shard}, losses"
            );
        }
    }
}
