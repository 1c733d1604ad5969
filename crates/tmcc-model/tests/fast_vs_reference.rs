//! The fast backend path against the dense reference path: in f64 they agree to rounding
//! (relative 1e-10); in f32 within relative (norm-wise) error 1e-5 on losses, outputs and
//! gradients, and on the parameters after 100 Adam steps. Norms below a floor count as that
//! floor (both are then zero up to rounding): gradients 1e-6; outputs 1e-4 or 10% of `‖x‖`;
//! losses 1e-6 or 10% of the loss of a zero output on the batch (`mean |x|` for L1,
//! `mean x²` for L2), whichever is larger. Far below the input's scale, an output or loss
//! is mostly the rounding of its terms (≈ 2e-7·|x| in f32, measured), which an L1 loss
//! passes on linearly and a ReLU output at its kink turns into 0 on one path only.

mod common;

use common::*;
use ndarray::ArrayView2;
use proptest::prelude::*;
use tmcc_kernels::cpu::Cpu;
use tmcc_kernels::Backend;
use tmcc_model::config::{
    Act, Config, LabelCoeffs, LossName, LossSpace, Optimizer, OutAct, Schedule, Variant,
};
use tmcc_model::fast::FastModel;
use tmcc_model::optim::adam_spec;
use tmcc_model::train::Trainer;
use tmcc_model::{reference, Float, Model};
use tmcc_testkit::{rel_err, rel_err_floor};

/// The (output, loss) floors of the module header for `m` on its first batch.
fn floors<T: Float>(m: &Model<T>) -> (f64, f64) {
    let cfg = &m.cfg;
    let batch = first_batch::<T>(cfg);
    let x: Vec<f64> = (0..cfg.instances)
        .flat_map(|k| to_f64(&batch.dense_instance(k)))
        .collect();
    let zero_loss = match cfg.loss {
        LossName::L1 => x.iter().map(|v| v.abs()).sum::<f64>(),
        LossName::L2 => x.iter().map(|v| v * v).sum::<f64>(),
    } / x.len() as f64;
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    ((0.1 * norm).max(1e-4), (0.1 * zero_loss).max(1e-6))
}

/// (fast per-instance losses, fast outputs, fast grads) and the reference's.
fn both_paths<T: Float>(m: &Model<T>) -> [(Vec<f64>, Vec<f64>, Vec<f64>); 2] {
    let cfg = &m.cfg;
    let (b, f) = (cfg.batch_size, cfg.n_feat);
    let batch = first_batch::<T>(cfg);
    let mut fast = FastModel::new(Cpu, m).unwrap();
    let mut ws = fast.workspace(b).unwrap();
    fast.load_batch(&mut ws, &batch).unwrap();
    fast.forward(&mut ws, T::one() / T::from_f64((b * f) as f64), true)
        .unwrap();
    fast.backward(&mut ws).unwrap();
    let rl = to_f64(&Cpu.read(&ws.row_loss).unwrap());
    let fast_loss: Vec<f64> = rl.chunks(b).map(|c| c.iter().sum()).collect();
    let fast_out = to_f64(&Cpu.read(fast.output(&ws)).unwrap());
    let fast_grads = to_f64(&fast.read_grads().unwrap());
    let (mut rl, mut ro, mut rg) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..cfg.instances {
        let x = batch.dense_instance(k);
        let r =
            reference::forward_backward(m, k, ArrayView2::from_shape((b, f), &x).unwrap(), true);
        rl.push(r.loss.as_f64());
        ro.extend(r.out.iter().map(|v| v.as_f64()));
        rg.extend(to_f64(&r.grads));
    }
    [(fast_loss, fast_out, fast_grads), (rl, ro, rg)]
}

/// The deep models of the fast path (read-off loss only), two instances side by side.
const FAST_DEEP: DeepRange = DeepRange {
    max_feat: 7,
    max_width: 5,
    instances: 2,
    resid: false,
};

/// Fast and reference paths of `cfg` in f64: equal to rounding (relative 1e-10).
fn agree_in_f64(cfg: &Config) -> Result<(), TestCaseError> {
    let mut m = Model::<f64>::new(cfg).unwrap();
    perturb_biases(&mut m);
    let [(fl, fo, fg), (rl, ro, rg)] = both_paths(&m);
    prop_assert!(
        rel_err_floor(&fl, &rl, 1e-6) < 1e-10,
        "loss {fl:?} vs {rl:?}"
    );
    prop_assert!(
        rel_err_floor(&fo, &ro, 1e-4) < 1e-10,
        "outputs differ: {}",
        rel_err_floor(&fo, &ro, 1e-4)
    );
    prop_assert!(
        rel_err_floor(&fg, &rg, 1e-6) < 1e-10,
        "grads differ: {}",
        rel_err_floor(&fg, &rg, 1e-6)
    );
    Ok(())
}

/// Fast and reference paths of `cfg` in f32: within relative 1e-5 above the floors.
fn agree_in_f32(cfg: &Config) -> Result<(), TestCaseError> {
    let mut m = Model::<f32>::new(cfg).unwrap();
    perturb_biases(&mut m);
    let [(fl, fo, fg), (rl, ro, rg)] = both_paths(&m);
    let (out_floor, loss_floor) = floors(&m);
    prop_assert!(
        rel_err_floor(&fl, &rl, loss_floor) <= 1e-5,
        "loss {fl:?} vs {rl:?} (floor {loss_floor})"
    );
    prop_assert!(
        rel_err_floor(&fo, &ro, out_floor) <= 1e-5,
        "outputs differ: {}",
        rel_err_floor(&fo, &ro, out_floor)
    );
    prop_assert!(
        rel_err_floor(&fg, &rg, 1e-6) <= 1e-5,
        "grads differ: {}",
        rel_err_floor(&fg, &rg, 1e-6)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn deep_fast_equals_reference_in_f64(cfg in arb_deep_config(FAST_DEEP)) {
        agree_in_f64(&cfg)?;
    }

    #[test]
    fn deep_fast_equals_reference_in_f32(cfg in arb_deep_config(FAST_DEEP)) {
        agree_in_f32(&cfg)?;
    }

    #[test]
    fn fast_equals_reference_in_f64(cfg in arb_config()) {
        agree_in_f64(&cfg)?;
    }

    #[test]
    fn fast_equals_reference_in_f32(cfg in arb_config()) {
        agree_in_f32(&cfg)?;
    }
}

/// Plain Adam/AdamW, written from the formulas, on the reference gradients.
fn reference_training(cfg: &Config, steps: u64) -> Vec<f64> {
    let mut m = Model::<f32>::new(cfg).unwrap();
    let n = m.params.len();
    let (mut mom, mut vel) = (vec![0.0f32; n], vec![0.0f32; n]);
    let rngs = (0..cfg.instances)
        .map(|k| tmcc_model::init::rng(cfg.instance_seed(k), tmcc_model::init::Stream::Data))
        .collect();
    let ps = (0..cfg.instances).map(|k| cfg.instance_p(k)).collect();
    let mut sampler = tmcc_model::batch::Sampler::<f32>::new(rngs, ps)
        .with_data(tmcc_model::data::DataSpec::of(cfg));
    let mut batch = Default::default();
    let (b, f) = (cfg.batch_size, cfg.n_feat);
    for t in 0..steps {
        sampler.sample(b, f, &mut batch);
        let mut grads = Vec::with_capacity(n);
        for k in 0..cfg.instances {
            let x = batch.dense_instance(k);
            let r = reference::forward_backward(
                &m,
                k,
                ArrayView2::from_shape((b, f), &x).unwrap(),
                true,
            );
            grads.extend(r.grads);
        }
        let s = adam_spec::<f32>(cfg, t);
        for i in 0..n {
            let g = grads[i];
            m.params[i] -= s.lr * s.weight_decay * m.params[i];
            mom[i] = s.beta1 * mom[i] + (1.0 - s.beta1) * g;
            vel[i] = s.beta2 * vel[i] + (1.0 - s.beta2) * g * g;
            let m_hat = mom[i] / s.bias_correction1;
            let v_hat = vel[i] / s.bias_correction2;
            m.params[i] -= s.lr * m_hat / (v_hat.sqrt() + s.eps);
        }
    }
    to_f64(&m.params)
}

#[test]
fn hundred_adam_steps_agree_in_f32() {
    let base = Config {
        n_feat: 20,
        n_hidden: 8,
        d_emb: 60,
        p: 0.05,
        batch_size: 64,
        steps: 100,
        instances: 2,
        lr: 3e-3,
        ..Config::default()
    };
    let cases = [
        Config {
            variant: Variant::EmbRes,
            ..base.clone()
        },
        Config {
            variant: Variant::EmbMlp,
            bias1: true,
            bias2: true,
            ..base.clone()
        },
        Config {
            variant: Variant::Mix,
            sigma: 0.05,
            optimizer: Optimizer::Adamw,
            weight_decay: 0.01,
            schedule: Schedule::Cosine,
            ..base.clone()
        },
        Config {
            variant: Variant::Mlp,
            tied: true,
            bias1: true,
            ..base.clone()
        },
        Config {
            variant: Variant::ResMlp,
            schedule: Schedule::Linear,
            warmup_steps: 10,
            ..base.clone()
        },
        Config {
            variant: Variant::EmbResOrth,
            tied: true,
            ..base.clone()
        },
        // Random label coefficients (fast path) and APD's quarter cosine.
        Config {
            variant: Variant::EmbRes,
            label_coeffs: LabelCoeffs::Uniform,
            label_seed: 4,
            optimizer: Optimizer::Adamw,
            weight_decay: 0.01,
            schedule: Schedule::CosineQuarter,
            ..base.clone()
        },
        // Deeper models, GELU, coefficients, biases, tying (fast path).
        Config {
            variant: Variant::EmbRes,
            n_layers: 2,
            d_mlp: vec![8, 5],
            act: Act::Gelu,
            label_coeffs: LabelCoeffs::Uniform,
            bias1: true,
            bias2: true,
            ..base.clone()
        },
        Config {
            variant: Variant::EmbRes,
            n_layers: 3,
            n_hidden: 4,
            optimizer: Optimizer::Adamw,
            weight_decay: 0.01,
            schedule: Schedule::CosineQuarter,
            ..base.clone()
        },
        Config {
            variant: Variant::Mix,
            n_layers: 2,
            sigma: 0.05,
            tied: true,
            bias2: true,
            out_act: OutAct::Gelu,
            loss: LossName::L1,
            ..base.clone()
        },
        // The residual-space loss has no fast path: the trainer runs the dense path.
        Config {
            variant: Variant::ResMlp,
            n_layers: 3,
            loss_space: LossSpace::Resid,
            tied: true,
            ..base
        },
    ];
    for cfg in cases {
        let want = reference_training(&cfg, 100);
        let mut t = Trainer::new(Cpu, Model::<f32>::new(&cfg).unwrap()).unwrap();
        assert_eq!(
            t.on_fast_path(),
            cfg.loss_space == LossSpace::Readoff,
            "{cfg:?}"
        );
        t.run(None, |_, _| Ok(true)).unwrap();
        let got = to_f64(&t.read_params().unwrap());
        let e = rel_err(&got, &want);
        assert!(
            e <= 1e-5,
            "{:?}: relative error {e} after 100 steps",
            cfg.variant
        );
    }
}

/// APD's targets train on the fast path (the presets' own configs, one instance, a few
/// steps with a finite loss).
#[test]
fn apd_presets_train_on_the_fast_path() {
    for name in [
        "apd-1layer",
        "apd-2layer",
        "spd-3layer",
        "tmcc-abs",
        "elhage-abs",
        "apd-tms-5-2",
        "apd-tms-40-10",
    ] {
        let mut cfg = tmcc_model::presets::load(name).unwrap();
        cfg.instances = 1;
        cfg.p_per_instance.truncate(1);
        cfg.batch_size = 256;
        cfg.steps = 3;
        let mut t = Trainer::new(Cpu, Model::<f32>::new(&cfg).unwrap()).unwrap();
        assert!(t.on_fast_path(), "{name}");
        let log = t.run(None, |_, _| Ok(true)).unwrap();
        let last = log.last().unwrap();
        assert!(last.loss.iter().all(|l| l.is_finite()), "{name}: {last:?}");
    }
}

/// The toy models of other papers (presets `elhage-abs`, `apd-tms-*`, `tmcc-abs`) and the
/// other data laws, fast path against reference in f64, one fixed config each.
#[test]
fn the_other_toy_models_agree_with_the_reference() {
    for name in ["tmcc-abs", "elhage-abs", "apd-tms-5-2", "apd-tms-40-10"] {
        let mut cfg = tmcc_model::presets::load(name).unwrap();
        cfg.n_feat = cfg.n_feat.min(12);
        cfg.d_emb = cfg.d_emb.min(20);
        cfg.n_hidden = cfg.n_hidden.min(4);
        cfg.importance_decay = cfg.importance_decay.map(|_| 0.8);
        cfg.instances = 2;
        cfg.p_per_instance = if cfg.p_per_instance.is_empty() {
            Vec::new()
        } else {
            vec![0.5, 0.1]
        };
        cfg.p = 0.3;
        cfg.batch_size = 16;
        agree_in_f64(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
