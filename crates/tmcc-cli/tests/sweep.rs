//! Sweeps: sharded + merged equals unsharded; merge refuses mismatched shards; outputs are
//! never overwritten without --force.
//!
//! "Equals": every run's trained weights, Adam moments and data-stream position are
//! bit-identical, whichever group or shard it trained in; the table's config columns are
//! identical; its loss columns agree to a relative 1e-9. (The losses are reductions over the
//! instances' batched forward pass, whose last bit may depend on how many instances share
//! the pass; the weights do not.)

mod common;

use std::path::Path;

use common::*;
use serde_json::{Map, Value};
use tmcc_model::checkpoint::Checkpoint;

const SWEEP: &str = r#"
# A tiny sweep: 2 variants × 2 p × 3 seeds = 12 runs.
n_feat = 8
n_hidden = 4
d_emb = 16
batch_size = 32
steps = 60
eval_samples = 2000
log_every = 20
sigma = 0.1

[grid]
seed = [0, 1, 2]
p = [0.05, 0.2]
variant = ["emb_res", "mix"]
"#;

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Rows without the columns that say where a row was computed.
fn model_rows(dir: &Path) -> Vec<serde_json::Map<String, Value>> {
    results(dir)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.as_object().unwrap().clone();
            for c in ["shard", "dir", "instance"] {
                r.remove(c);
            }
            r
        })
        .collect()
}

/// The CSV without the `shard`, `dir`, `instance` columns.
fn csv_model_part(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !["shard", "dir", "instance"].contains(&header[i]))
        .collect();
    std::iter::once(header.join(","))
        .chain(lines.map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
        }))
        .collect()
}

const LOSS_COLUMNS: [&str; 6] = [
    "final_train_loss",
    "eval_loss",
    "eval_loss_se",
    "naive_loss",
    "loss_over_naive",
    "loss_over_naive_se",
];

/// Same columns and values; the loss columns to a relative 1e-9.
#[track_caller]
fn assert_same_rows(a: &[Map<String, Value>], b: &[Map<String, Value>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        for (k, v) in x {
            let w = &y[k];
            if LOSS_COLUMNS.contains(&k.as_str()) {
                let (v, w) = (v.as_f64().unwrap(), w.as_f64().unwrap());
                assert!(
                    (v - w).abs() <= 1e-9 * v.abs().max(w.abs()),
                    "run {}: {k} {v} vs {w}",
                    x["run"]
                );
            } else {
                assert_eq!(v, w, "run {}: column {k}", x["run"]);
            }
        }
    }
}

/// One instance of a checkpoint: its weights, moments and stream position, as bits.
fn instance_state(row: &Value, root: &Path) -> (Vec<u32>, Vec<u32>, Vec<u32>, u128) {
    let dir = root.join(row["dir"].as_str().unwrap());
    let ck = Checkpoint::<f32>::load(&dir.join("checkpoint.safetensors")).unwrap();
    let k = row["instance"].as_u64().unwrap() as usize;
    let n = ck.model.layout.len;
    let bits = |v: &[f32]| {
        v[k * n..(k + 1) * n]
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    };
    let (m, v) = ck.moments.as_ref().unwrap();
    (
        bits(&ck.model.params),
        bits(m),
        bits(v),
        ck.stream_positions.unwrap()[k],
    )
}

/// Every run of `a` and `b` ends with bit-identical weights, Adam moments and data stream.
#[track_caller]
fn assert_same_weights(a: &Path, b: &Path) {
    let (ra, rb) = (results(a), results(b));
    let (ra, rb) = (
        ra["rows"].as_array().unwrap(),
        rb["rows"].as_array().unwrap(),
    );
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(rb) {
        assert_eq!(x["run"], y["run"]);
        assert!(
            instance_state(x, a) == instance_state(y, b),
            "run {} trained differently",
            x["run"]
        );
    }
}

#[test]
fn shards_merged_equal_the_unsharded_sweep() {
    let tmp = Scratch::new("shards");
    let file = tmp.path("sweep.toml");
    std::fs::write(&file, SWEEP).unwrap();
    let whole = tmp.path("whole");
    ok(&tmcc(&["sweep", s(&file), "--out", s(&whole), "-q"]));
    let r = results(&whole);
    assert_eq!(r["runs_total"], 12);
    assert_eq!(r["complete"], true);
    assert_eq!(r["rows"].as_array().unwrap().len(), 12);
    assert_eq!(
        r["groups"].as_array().unwrap().len(),
        2,
        "6 emb_res + 6 mix runs"
    );
    // Every config field is a column, with per-run values.
    let header = std::fs::read_to_string(whole.join("results.csv")).unwrap();
    let header = header.lines().next().unwrap();
    for c in [
        "run",
        "variant",
        "p",
        "seed",
        "sigma",
        "d_emb",
        "lr",
        "loss",
        "eval_loss",
        "eval_loss_se",
        "naive_loss",
        "loss_over_naive",
        "loss_over_naive_se",
        "final_train_loss",
        "steps_done",
        "shard",
    ] {
        assert!(
            header.split(',').any(|h| h == c),
            "no column {c} in {header}"
        );
    }
    assert!(!header.contains("p_per_instance"));

    // Three shards: 0/3 and 2/3 by flag, 1/3 from a 1-based Slurm array (tasks 1..3).
    let shards: Vec<_> = (0..3).map(|k| tmp.path(&format!("shard{k}"))).collect();
    ok(&tmcc(&[
        "sweep",
        s(&file),
        "--out",
        s(&shards[0]),
        "--shard",
        "0/3",
        "-q",
    ]));
    ok(&tmcc_in(
        None,
        &["sweep", s(&file), "--out", s(&shards[1]), "-q"],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    ));
    ok(&tmcc(&[
        "sweep",
        s(&file),
        "--out",
        s(&shards[2]),
        "--shard",
        "2/3",
        "-q",
    ]));
    for (k, d) in shards.iter().enumerate() {
        let r = results(d);
        assert_eq!(r["shard"]["k"], k as u64);
        assert_eq!(r["rows"].as_array().unwrap().len(), 4);
        assert!(r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["shard"] == format!("{k}/3")));
    }
    let merged = tmp.path("merged");
    ok(&tmcc(&[
        "merge",
        s(&merged),
        s(&shards[2]),
        s(&shards[0]),
        s(&shards[1]),
    ]));
    assert_same_rows(&model_rows(&merged), &model_rows(&whole));
    assert_same_weights(&merged, &whole);
    assert_eq!(csv_model_part(&merged).len(), 13);
    // Merged rows still point at the checkpoints that computed them.
    for row in results(&merged)["rows"].as_array().unwrap() {
        assert!(Path::new(row["dir"].as_str().unwrap())
            .join("checkpoint.safetensors")
            .is_file());
    }

    // Group size does not change the numbers either.
    let single = tmp.path("single");
    ok(&tmcc(&[
        "sweep",
        s(&file),
        "--out",
        s(&single),
        "--max-instances",
        "1",
        "-q",
    ]));
    assert_eq!(results(&single)["groups"].as_array().unwrap().len(), 12);
    assert_same_rows(&model_rows(&single), &model_rows(&whole));
    assert_same_weights(&single, &whole);
}

#[test]
fn merge_refuses_mismatched_shards() {
    let tmp = Scratch::new("mismatch");
    let file = tmp.path("sweep.toml");
    std::fs::write(&file, SWEEP).unwrap();
    let other = tmp.path("other.toml");
    std::fs::write(&other, SWEEP.replace("steps = 60", "steps = 40")).unwrap();
    let sweep = |f: &Path, shard: &str, out: &str| {
        ok(&tmcc(&[
            "sweep",
            s(f),
            "--out",
            s(&tmp.path(out)),
            "--shard",
            shard,
            "-q",
        ]));
        tmp.path(out)
    };
    let a0 = sweep(&file, "0/2", "a0");
    let a1 = sweep(&file, "1/2", "a1");
    let b1 = sweep(&other, "1/2", "b1");
    let c1 = sweep(&file, "1/3", "c1");
    let out = tmp.path("out");
    let cases: Vec<(Vec<&Path>, &str)> = vec![
        (vec![&a0, &b1], "different sweep"),
        (vec![&a0, &a0], "given twice"),
        (vec![&a0], "missing shard"),
        (vec![&a0, &c1], "shard count"),
    ];
    for (dirs, want) in cases {
        let mut args = vec!["merge", s(&out)];
        args.extend(dirs.iter().map(|d| s(d)));
        let e = one_line_error(&tmcc(&args));
        assert!(e.contains(want), "{want}: {e}");
        assert!(!out.exists(), "merge left an output after refusing");
    }
    // An incomplete shard (e.g. interrupted) is refused.
    let mut r = results(&a1);
    r["complete"] = Value::Bool(false);
    let a1_broken = tmp.path("a1_broken");
    std::fs::create_dir_all(&a1_broken).unwrap();
    std::fs::write(a1_broken.join("results.json"), r.to_string()).unwrap();
    let e = one_line_error(&tmcc(&["merge", s(&out), s(&a0), s(&a1_broken)]));
    assert!(e.contains("incomplete"), "{e}");
    // Not a sweep directory at all.
    let e = one_line_error(&tmcc(&["merge", s(&out), s(&a0), s(&tmp.path("nope"))]));
    assert!(e.contains("nope"), "{e}");
    // The good pair merges; an existing output needs --force; an output holding a shard is refused.
    ok(&tmcc(&["merge", s(&out), s(&a0), s(&a1)]));
    let e = one_line_error(&tmcc(&["merge", s(&out), s(&a0), s(&a1)]));
    assert!(e.contains("--force"), "{e}");
    ok(&tmcc(&["merge", s(&out), s(&a0), s(&a1), "--force"]));
    let e = one_line_error(&tmcc(&["merge", s(&tmp.0), s(&a0), s(&a1), "--force"]));
    assert!(e.contains("holds shard"), "{e}");
    assert!(a0.join("results.json").is_file());
}

#[test]
fn sweep_never_overwrites_without_force() {
    let tmp = Scratch::new("noforce");
    let file = tmp.path("sweep.toml");
    std::fs::write(&file, SWEEP.replace("[0, 1, 2]", "[0]")).unwrap();
    let out = tmp.path("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "precious").unwrap();
    let e = one_line_error(&tmcc(&["sweep", s(&file), "--out", s(&out), "-q"]));
    assert!(e.contains("--force"), "{e}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "precious"
    );
    ok(&tmcc(&[
        "sweep",
        s(&file),
        "--out",
        s(&out),
        "-q",
        "--force",
    ]));
    assert!(!out.join("keep.txt").exists());
    assert_eq!(
        std::fs::read_to_string(out.join("sweep.toml")).unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
    // Bad shard specifications are one-line errors.
    for bad in ["3/3", "x", "1/0"] {
        let e = one_line_error(&tmcc(&[
            "sweep",
            s(&file),
            "--out",
            s(&tmp.path("o2")),
            "--shard",
            bad,
        ]));
        assert!(e.contains("--shard"), "{e}");
    }
    let e = one_line_error(&tmcc_in(
        None,
        &["sweep", s(&file), "--out", s(&tmp.path("o2"))],
        &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    ));
    assert!(e.contains("SLURM_ARRAY_TASK"), "{e}");
    assert!(!tmp.path("o2").exists());
}
