//! Shared helpers of the `tmcc` integration tests: the binary, scratch directories, tiny
//! configs, running commands and comparing checkpoints bit for bit.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use tmcc_model::checkpoint::Checkpoint;

pub const BIN: &str = env!("CARGO_BIN_EXE_tmcc");

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tmcc-cli-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Flags of a tiny model that trains in milliseconds.
pub fn tiny() -> Vec<String> {
    [
        "n_feat=8",
        "n_hidden=4",
        "d_emb=16",
        "batch_size=32",
        "eval_samples=2000",
        "p=0.1",
        "log_every=10",
    ]
    .iter()
    .flat_map(|s| ["--set".to_string(), s.to_string()])
    .collect()
}

/// Runs `tmcc args…` in `cwd` (or the current directory).
pub fn tmcc_in(cwd: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    // The tests compare with CPU runs bit for bit, also on a machine with a GPU.
    c.env("TMCC_DEVICE", "cpu");
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output().expect("run tmcc")
}

pub fn tmcc(args: &[&str]) -> Output {
    tmcc_in(None, args, &[])
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts success, printing stderr otherwise.
#[track_caller]
pub fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "tmcc failed ({:?}): {}",
        o.status,
        stderr(o)
    );
    o
}

/// Asserts a clean failure: exit code 2, exactly one stderr line starting with `error:`,
/// no panic; returns that line.
#[track_caller]
pub fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "panic: {err}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got: {err}");
    assert!(lines[0].starts_with("error: "), "not an error line: {err}");
    lines[0].to_string()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Trains a tiny model into `out` with extra flags.
pub fn train_tiny(out: &Path, extra: &[&str]) {
    let mut args: Vec<String> = vec!["train".into(), "-q".into(), "--out".into(), s(out).into()];
    args.extend(tiny());
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&tmcc(&a));
}

pub fn load(dir: &Path) -> Checkpoint<f32> {
    Checkpoint::<f32>::load(&dir.join("checkpoint.safetensors")).expect("checkpoint loads")
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Asserts two checkpoints hold bit-identical training states.
#[track_caller]
pub fn assert_same_state(a: &Checkpoint<f32>, b: &Checkpoint<f32>) {
    assert_eq!(a.step, b.step, "steps differ");
    assert_eq!(a.model.cfg, b.model.cfg, "configs differ");
    let n_diff = a
        .model
        .params
        .iter()
        .zip(&b.model.params)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(
        n_diff,
        0,
        "{n_diff} of {} weights differ",
        a.model.params.len()
    );
    assert!(bits(&a.model.params) == bits(&b.model.params));
    let (am, av) = a.moments.as_ref().expect("moments");
    let (bm, bv) = b.moments.as_ref().expect("moments");
    assert!(bits(am) == bits(bm), "Adam first moments differ");
    assert!(bits(av) == bits(bv), "Adam second moments differ");
    assert_eq!(
        a.stream_positions, b.stream_positions,
        "data-stream positions differ"
    );
    assert_eq!(a.model.embed, b.model.embed);
    assert_eq!(a.model.mixing, b.model.mixing);
}
