//! Manual gradients of the dense reference path against central finite differences in
//! f64, over random shapes, variants, losses, biases, tying, output activations, mixing
//! matrices (with a fixed or a learned `σ`) and inputs. Tolerance: `|g − fd| ≤ 1e-7 + 1e-6·|fd|` with `ε = 1e-6`.
//! A coordinate whose ±ε perturbation moves any ReLU or `|·|` across its kink is skipped
//! (the finite difference is then not a derivative); the tests count and bound the skips.
//! A second property covers APD's residual MLPs: 1–3 blocks of their own widths, ReLU or
//! GELU (hidden and output), trivial or random label coefficients, read-off or residual
//! loss space, biases and tied weights. Both draw the task options of crate::data
//! (labels `act_plus_resid`/`abs`/`relu`, values `U[−1, 1]`/`U[0, 1]`, Bernoulli /
//! at-least-one / exactly-`k` data, importance decay); a third test checks every one of
//! their combinations once on a fixed model.

mod common;

use common::*;
use ndarray::ArrayView2;
use proptest::prelude::*;
use tmcc_model::config::{Config, Variant};
use tmcc_model::{reference, Model, Param};

const EPS: f64 = 1e-6;

/// Checks every parameter of instance `k`; returns (checked, skipped).
fn check_instance(m: &Model<f64>, k: usize, x: &[f64]) -> (usize, usize) {
    let cfg = &m.cfg;
    let xv = ArrayView2::from_shape((cfg.batch_size, cfg.n_feat), x).unwrap();
    let base = reference::forward_backward(m, k, xv, true);
    let (mut checked, mut skipped) = (0, 0);
    for i in 0..m.layout.len {
        let at = k * m.layout.len + i;
        let mut plus = m.clone();
        plus.params[at] += EPS;
        let mut minus = m.clone();
        minus.params[at] -= EPS;
        let rp = reference::forward_backward(&plus, k, xv, false);
        let rm = reference::forward_backward(&minus, k, xv, false);
        if rp.signs != rm.signs || rp.signs != base.signs {
            skipped += 1;
            continue;
        }
        let fd = (rp.loss - rm.loss) / (2.0 * EPS);
        let g = base.grads[i];
        assert!(
            (g - fd).abs() <= 1e-7 + 1e-6 * fd.abs(),
            "{:?} param {i}: manual {g} vs finite difference {fd}",
            cfg.variant
        );
        checked += 1;
    }
    (checked, skipped)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn reference_gradients_match_finite_differences(cfg in arb_config()) {
        // Half the mix models learn σ (its gradient is checked with the others).
        let cfg = Config {
            learn_sigma: cfg.variant == Variant::Mix && cfg.seed % 2 == 0,
            ..cfg
        };
        let mut m = Model::<f64>::new(&cfg).unwrap();
        perturb_biases(&mut m);
        let batch = first_batch::<f64>(&cfg);
        let (mut checked, mut skipped) = (0, 0);
        for k in 0..cfg.instances {
            let (c, s) = check_instance(&m, k, &batch.dense_instance(k));
            checked += c;
            skipped += s;
        }
        prop_assert!(skipped * 4 <= checked + skipped, "{skipped} of {} skipped", checked + skipped);
    }
}

/// Deep models for finite differences (smaller, both loss spaces).
const GRADIENT_DEEP: DeepRange = DeepRange {
    max_feat: 6,
    max_width: 4,
    instances: 1,
    resid: true,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn deep_reference_gradients_match_finite_differences(cfg in arb_deep_config(GRADIENT_DEEP)) {
        cfg.validate().unwrap();
        let mut m = Model::<f64>::new(&cfg).unwrap();
        perturb_biases(&mut m);
        let batch = first_batch::<f64>(&cfg);
        let (checked, skipped) = check_instance(&m, 0, &batch.dense_instance(0));
        prop_assert!(skipped * 4 <= checked + skipped, "{skipped} of {} skipped", checked + skipped);
    }
}

/// A config with biases and one pre-activation placed at `offset` from its kink.
fn near_kink(offset: f64) -> (Model<f64>, Vec<f64>) {
    let cfg = Config {
        variant: Variant::EmbRes,
        n_feat: 5,
        n_hidden: 3,
        d_emb: 8,
        p: 1.0,
        bias1: true,
        bias2: true,
        batch_size: 3,
        instances: 1,
        seed: 11,
        ..Config::default()
    };
    let mut m = Model::<f64>::new(&cfg).unwrap();
    let x = first_batch::<f64>(&cfg).dense_instance(0);
    // pre[0, 0] = (W1 W_E x_0)_0 + b1_0: choose b1_0 so that it equals `offset`.
    let e = m.instance_embed(0).unwrap().to_vec();
    let w1 = m.tensor(0, Param::W1).unwrap().to_vec();
    let u: Vec<f64> = (0..8)
        .map(|j| (0..5).map(|f| e[j * 5 + f] * x[f]).sum())
        .collect();
    let w1u: f64 = (0..8).map(|j| w1[j] * u[j]).sum();
    let b1 = m.layout.offset(Param::B1);
    m.params[b1] = offset - w1u;
    (m, x)
}

#[test]
fn a_relu_just_above_its_kink_is_checked_exactly() {
    let (m, x) = near_kink(1e-4);
    let (checked, skipped) = check_instance(&m, 0, &x);
    assert_eq!(skipped, 0);
    assert_eq!(checked, m.layout.len);
}

#[test]
fn a_relu_on_its_kink_is_detected_and_skipped() {
    let (m, x) = near_kink(1e-9);
    let (checked, skipped) = check_instance(&m, 0, &x);
    assert!(skipped > 0, "no perturbation was seen crossing the kink");
    assert!(checked > skipped);
}

#[test]
fn every_label_value_data_and_importance_combination_has_exact_gradients() {
    use tmcc_model::config::{DataMode, Labels, Values};
    let mut combos = 0;
    for labels in [Labels::ActPlusResid, Labels::Abs, Labels::Relu] {
        for values in [Values::Signed, Values::Unsigned] {
            for data in [
                DataMode::Bernoulli,
                DataMode::AtLeastOne,
                DataMode::ExactlyK,
            ] {
                for decay in [false, true] {
                    let base = Config {
                        variant: Variant::EmbRes,
                        n_feat: 5,
                        n_hidden: 3,
                        d_emb: 7,
                        p: 0.3,
                        res_factor: Some(0.7),
                        bias1: true,
                        bias2: true,
                        batch_size: 6,
                        instances: 1,
                        seed: 3,
                        ..Config::default()
                    };
                    let task = TaskOptions {
                        labels,
                        values,
                        data,
                        k_seed: 1,
                        decay,
                        identity_act: false,
                    };
                    let cfg = with_task_options(base, &task);
                    let mut m = Model::<f64>::new(&cfg).unwrap();
                    perturb_biases(&mut m);
                    let x = first_batch::<f64>(&cfg).dense_instance(0);
                    let (checked, skipped) = check_instance(&m, 0, &x);
                    assert!(
                        checked > 3 * skipped,
                        "{skipped} of {checked} skipped: {cfg:?}"
                    );
                    combos += 1;
                }
            }
        }
    }
    assert_eq!(combos, 36);
}

/// APD's toy model of superposition: tied weights, a linear hidden layer, ReLU output with a
/// final bias, `U[0, 1]` values, `|x|` labels.
#[test]
fn the_tms_model_has_exact_gradients() {
    use tmcc_model::config::{Act, Labels, OutAct, Values};
    let cfg = Config {
        variant: Variant::Mlp,
        n_feat: 5,
        n_hidden: 2,
        act: Act::Identity,
        tied: true,
        bias2: true,
        out_act: OutAct::Relu,
        labels: Labels::Abs,
        values: Values::Unsigned,
        p: 0.4,
        batch_size: 8,
        instances: 1,
        seed: 5,
        ..Config::default()
    };
    cfg.validate().unwrap();
    let mut m = Model::<f64>::new(&cfg).unwrap();
    perturb_biases(&mut m);
    let x = first_batch::<f64>(&cfg).dense_instance(0);
    let (checked, skipped) = check_instance(&m, 0, &x);
    assert!(checked > 3 * skipped, "{skipped} of {checked} skipped");
}
