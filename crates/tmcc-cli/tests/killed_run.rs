//! A run killed with SIGKILL at any moment leaves no half-written file: every file under
//! its name parses (config.toml, checkpoint.safetensors, progress.json), and the only other
//! thing it can leave is a hidden temporary file `.NAME.tmp-PID` of the write it was
//! killed in (every file is written to one and renamed into place), which
//! `tmcc train --resume` removes before it continues.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::Config;

fn is_temp(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks every file of a killed run's directory; returns the temporary files left over.
fn check_dir(dir: &Path) -> Vec<String> {
    let mut temps = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        match name.as_str() {
            "config.toml" => {
                Config::from_toml_str(&std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|err| panic!("half-written config.toml: {err}"));
            }
            "checkpoint.safetensors" => {
                Checkpoint::<f32>::load(&path)
                    .unwrap_or_else(|err| panic!("half-written checkpoint: {err}"));
            }
            "progress.json" | "metrics.json" => {
                let text = std::fs::read_to_string(&path).unwrap();
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|err| panic!("half-written {name}: {err}"));
            }
            n if is_temp(n) => temps.push(name),
            other => panic!("unexpected file {other} in a killed run"),
        }
    }
    temps
}

#[test]
fn a_killed_run_leaves_no_half_written_file() {
    let tmp = Scratch::new("killed");
    // Kill at several moments; the run checkpoints at every step, so most kills land
    // between or inside writes.
    for (i, delay_ms) in [0u64, 30, 150, 400].into_iter().enumerate() {
        let dir = tmp.path(&format!("run{i}"));
        let mut args: Vec<String> = ["train", "-q", "--out", s(&dir), "--checkpoint-every", "1"]
            .map(String::from)
            .to_vec();
        args.extend(tiny());
        args.extend(["--set", "log_every=1", "--set", "steps=100000000"].map(String::from));
        let mut child = Command::new(BIN)
            .args(&args)
            .env("TMCC_DEVICE", "cpu")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if delay_ms > 0 {
            let t0 = Instant::now();
            while !dir.join("checkpoint.safetensors").exists()
                && t0.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !dir.exists() {
            continue; // killed before it created anything
        }
        let temps = check_dir(&dir);
        if !dir.join("checkpoint.safetensors").exists() {
            continue;
        }
        // Resume: removes leftovers, continues, and finishes a complete run directory.
        let step = Checkpoint::<f32>::load(&dir.join("checkpoint.safetensors"))
            .unwrap()
            .step;
        let o = ok(&tmcc(&[
            "train",
            "-q",
            "--resume",
            s(&dir),
            "--steps",
            &(step + 5).to_string(),
        ]))
        .clone();
        if !temps.is_empty() {
            assert!(stderr(&o).contains("temporary"), "{}", stderr(&o));
        }
        assert!(
            check_dir(&dir).is_empty(),
            "temporary files survived the resume"
        );
        assert!(dir.join("metrics.json").is_file());
        assert!(!dir.join("progress.json").exists());
    }
}

#[test]
fn resume_removes_the_temporary_file_of_a_killed_write() {
    let tmp = Scratch::new("leftover");
    let dir = tmp.path("run");
    train_tiny(&dir, &["--set", "steps=20"]);
    // What SIGKILL in the middle of writing the checkpoint leaves behind.
    let good = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let leftover = dir.join(".checkpoint.safetensors.tmp-4242");
    std::fs::write(&leftover, &good[..good.len() / 3]).unwrap();
    assert_eq!(
        check_dir(&dir),
        vec![".checkpoint.safetensors.tmp-4242".to_string()]
    );
    let o = ok(&tmcc(&[
        "train",
        "-q",
        "--resume",
        s(&dir),
        "--steps",
        "30",
    ]))
    .clone();
    assert!(
        stderr(&o).contains("removed 1 temporary file"),
        "{}",
        stderr(&o)
    );
    assert!(check_dir(&dir).is_empty());
    assert!(!leftover.exists());
}
