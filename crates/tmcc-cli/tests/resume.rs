//! Resume: a run interrupted and resumed with `tmcc train --resume DIR` ends with exactly
//! the weights (and optimizer state and data-stream positions) of an uninterrupted run.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tmcc_lab::rundir::RunDir;
use tmcc_lab::runner::Device;
use tmcc_model::{Config, Model};

fn config_of(sets: &[&str]) -> Config {
    let mut cfg = Config::default();
    let tiny = tiny();
    let all = tiny
        .chunks(2)
        .map(|c| c[1].as_str())
        .chain(sets.iter().copied());
    for kv in all {
        let (k, v) = kv.split_once('=').unwrap();
        cfg.set_str(k, v).unwrap();
    }
    cfg.validate().unwrap();
    cfg
}

fn set_flags<'a>(sets: &'a [&'a str]) -> Vec<&'a str> {
    sets.iter().flat_map(|s| ["--set", *s]).collect()
}

#[test]
fn resume_after_interrupt_is_bit_identical() {
    let cases: [&[&str]; 4] = [
        &[
            "variant=emb_res",
            "optimizer=adamw",
            "weight_decay=0.01",
            "lr=0.003",
            "schedule=cosine",
            "warmup_steps=10",
            "steps=90",
        ],
        &[
            "variant=mix",
            "instances=3",
            "p_per_instance=[0.05, 0.1, 0.3]",
            "sigma=0.1",
            "steps=90",
        ],
        &[
            "variant=mlp",
            "loss=l1",
            "bias1=true",
            "bias2=true",
            "schedule=linear",
            "steps=90",
        ],
        &[
            "variant=emb_mlp",
            "tied=true",
            "init=kaiming_uniform",
            "instances=2",
            "steps=90",
        ],
    ];
    for sets in cases {
        let tmp = Scratch::new("resume");
        let (a, b) = (tmp.path("interrupted"), tmp.path("straight"));
        // The interruption, as Ctrl-C leaves it: config.toml and the checkpoint of step 40.
        let cfg = config_of(sets);
        let trained =
            tmcc_lab::runner::train(&Device::Cpu, Model::new(&cfg).unwrap(), None, |p, _| {
                Ok(p.step < 40)
            })
            .unwrap();
        assert_eq!(trained.checkpoint.step, 40);
        let dir = RunDir::create(&a, false).unwrap();
        dir.write_config(&cfg).unwrap();
        dir.write_checkpoint(&trained.checkpoint).unwrap();
        ok(&tmcc(&["train", "-q", "--resume", s(&a)]));
        train_tiny(&b, &set_flags(sets));
        assert_same_state(&load(&a), &load(&b));
        assert_eq!(load(&a).step, 90, "{sets:?}");
    }
}

#[test]
fn resume_with_steps_extends_a_finished_run_bit_identically() {
    let tmp = Scratch::new("extend");
    let (a, b) = (tmp.path("a"), tmp.path("b"));
    train_tiny(&a, &["--set", "steps=60", "--variant", "emb_res"]);
    ok(&tmcc(&["train", "-q", "--resume", s(&a), "--steps", "130"]));
    train_tiny(&b, &["--set", "steps=130", "--variant", "emb_res"]);
    assert_same_state(&load(&a), &load(&b));
    // The loss curve spans both sessions and config.toml records the new length.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["steps_done"], 130);
    let steps: Vec<u64> = m["loss_curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&1));
    assert_eq!(steps.last(), Some(&130));
    assert!(steps.contains(&60) && steps.contains(&70));
    let cfg = Config::from_toml_str(&std::fs::read_to_string(a.join("config.toml")).unwrap());
    assert_eq!(cfg.unwrap().steps, 130);
    assert!(!a.join("progress.json").exists());
}

#[test]
fn ctrl_c_saves_a_checkpoint_that_resumes_bit_identically() {
    let tmp = Scratch::new("sigint");
    let (a, b) = (tmp.path("a"), tmp.path("b"));
    let mut args: Vec<String> = ["train", "-q", "--out", s(&a), "--checkpoint-every", "500"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(tiny());
    args.extend(["--set".into(), "steps=100000000".into()]);
    let child = Command::new(BIN)
        .args(&args)
        .env("TMCC_DEVICE", "cpu")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !a.join("checkpoint.safetensors").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    let stopped = load(&a).step;
    assert!(stopped > 0 && stopped < 100_000_000);
    let end = (stopped + 40).to_string();
    ok(&tmcc(&["train", "-q", "--resume", s(&a), "--steps", &end]));
    train_tiny(&b, &["--set", &format!("steps={end}")]);
    assert_same_state(&load(&a), &load(&b));
}

#[test]
fn resume_refuses_what_it_cannot_honour() {
    let tmp = Scratch::new("refuse");
    let a = tmp.path("a");
    train_tiny(&a, &["--set", "steps=30"]);
    let e = one_line_error(&tmcc(&["train", "--resume", s(&a), "--set", "p=0.2"]));
    assert!(e.contains("--resume"), "{e}");
    let e = one_line_error(&tmcc(&["train", "--resume", s(&a), "--steps", "10"]));
    assert!(e.contains("--steps"), "{e}");
    let e = one_line_error(&tmcc(&["train", "--resume", s(&tmp.path("nope"))]));
    assert!(e.contains("checkpoint"), "{e}");
    let before = load(&a);
    let o = ok(&tmcc(&["train", "--resume", s(&a)])).clone();
    assert!(stderr(&o).contains("already complete"));
    assert_same_state(&before, &load(&a));
}
