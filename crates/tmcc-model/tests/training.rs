//! Properties of training runs: determinism, independence of instances, exact resume
//! from a checkpoint, and the stop on a non-finite loss.

use tmcc_kernels::cpu::Cpu;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::config::{Config, Variant};
use tmcc_model::train::Trainer;
use tmcc_model::{Error, Model};

fn small(variant: Variant) -> Config {
    Config {
        variant,
        n_feat: 12,
        n_hidden: 5,
        d_emb: 30,
        p: 0.1,
        batch_size: 32,
        steps: 60,
        log_every: 10,
        ..Config::default()
    }
}

fn train(cfg: &Config) -> Vec<f32> {
    let mut t = Trainer::new(Cpu, Model::<f32>::new(cfg).unwrap()).unwrap();
    t.run(None, |_, _| Ok(true)).unwrap();
    t.read_params().unwrap()
}

#[test]
fn same_config_same_weights() {
    let cfg = small(Variant::EmbRes);
    assert_eq!(train(&cfg), train(&cfg));
}

#[test]
fn an_instance_trains_as_it_would_alone() {
    for v in [Variant::EmbRes, Variant::Mix, Variant::Mlp] {
        let many = Config {
            instances: 3,
            seed: 10,
            p_per_instance: vec![0.05, 0.1, 0.2],
            sigma_per_instance: vec![0.0, 0.1, 0.2],
            ..small(v)
        };
        let all = train(&many);
        let p_len = all.len() / 3;
        for k in 0..3 {
            let alone = Config {
                instances: 1,
                seed: 10 + k as u64,
                p: many.p_per_instance[k],
                sigma: many.sigma_per_instance[k],
                p_per_instance: vec![],
                sigma_per_instance: vec![],
                ..many.clone()
            };
            assert_eq!(
                &all[k * p_len..(k + 1) * p_len],
                &train(&alone)[..],
                "{v:?} instance {k}"
            );
        }
    }
}

#[test]
fn resume_from_a_checkpoint_is_exact() {
    let cfg = Config {
        instances: 2,
        ..small(Variant::EmbRes)
    };
    let straight = train(&cfg);
    let mut first = Trainer::new(Cpu, Model::<f32>::new(&cfg).unwrap()).unwrap();
    first.run(Some(25), |_, _| Ok(true)).unwrap();
    let ck = Checkpoint {
        model: first.snapshot().unwrap(),
        step: first.step,
        moments: Some(first.read_moments().unwrap()),
        stream_positions: Some(first.stream_positions()),
    };
    let path = std::env::temp_dir().join(format!("tmcc-resume-{}.safetensors", std::process::id()));
    ck.save(&path).unwrap();
    let back = Checkpoint::<f32>::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back, ck);
    let (m, v) = back.moments.as_ref().unwrap();
    let mut second = Trainer::resume(
        Cpu,
        back.model.clone(),
        (m, v),
        back.step,
        back.stream_positions.as_ref().unwrap(),
    )
    .unwrap();
    second.run(None, |_, _| Ok(true)).unwrap();
    assert_eq!(second.read_params().unwrap(), straight);
}

#[test]
fn a_non_finite_loss_stops_training() {
    let cfg = Config {
        lr: 1e30,
        log_every: 1,
        ..small(Variant::Mlp)
    };
    let mut t = Trainer::new(Cpu, Model::<f32>::new(&cfg).unwrap()).unwrap();
    match t.run(None, |_, _| Ok(true)) {
        Err(Error::NonFinite { step, .. }) => assert!(step < 60),
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
}
