//! Bad input never crashes tmcc: every case gives exit code 2, one stderr line (each
//! cause said once), no panic, nothing written and nothing lost.
//!
//! Two tables: invalid configs (flags, config files, sweep files: the line names the
//! field), and bad inputs across every command (memory, paths, unwritable and full output
//! directories, damaged or mismatched checkpoints, flags, environment): the whole scratch
//! directory is compared byte for byte before and after each case. Corrupt checkpoint
//! files through every command are in `checkpoint_errors.rs`.

mod common;

use common::*;

/// How the bad input reaches tmcc.
enum Input {
    /// `tmcc train` with these flags (after the tiny defaults).
    Flags(&'static [&'static str]),
    /// `tmcc train --config FILE` with this file.
    File(&'static str),
    /// `tmcc sweep FILE` with this sweep file.
    Sweep(&'static str),
}
use Input::*;

/// (input, text the error line must contain — the field's name).
const CASES: &[(Input, &str)] = &[
    (Flags(&["--set", "p=0"]), "`p`"),
    (Flags(&["--set", "p=1.5"]), "`p`"),
    (Flags(&["--set", "p=-0.1"]), "`p`"),
    (Flags(&["--set", "p=nan"]), "`p`"),
    (Flags(&["--set", "p=abc"]), "`p`"),
    (Flags(&["--set", "n_hidden=0"]), "`n_hidden`"),
    (Flags(&["--set", "n_hidden=-3"]), "`n_hidden`"),
    (Flags(&["--set", "n_feat=0"]), "`n_feat`"),
    (Flags(&["--set", "lr=nan"]), "`lr`"),
    (Flags(&["--set", "lr=-1e-3"]), "`lr`"),
    (Flags(&["--set", "lr=inf"]), "`lr`"),
    (Flags(&["--variant", "bogus"]), "`variant`"),
    (Flags(&["--preset", "apd-9layer"]), "`preset`"),
    (
        Flags(&["--set", "n_layers=3", "--set", "d_mlp=[4, 4]"]),
        "`d_mlp`",
    ),
    (
        Flags(&["--set", "n_layers=2", "--set", "d_mlp=[4, 0]"]),
        "`d_mlp`",
    ),
    (
        Flags(&[
            "--set",
            "loss_space=resid",
            "--set",
            "importance=[1, 1, 1, 1, 1, 1, 1, 2]",
        ]),
        "`loss_space`",
    ),
    (
        Sweep("preset = \"apd-9layer\"\n[grid]\nseed = [0]"),
        "`preset`",
    ),
    (Flags(&["--set", "variant=transformer"]), "`variant`"),
    (Flags(&["--set", "no_such_field=1"]), "`no_such_field`"),
    (
        Flags(&["--variant", "emb_res_orth", "--set", "d_emb=4"]),
        "`d_emb`",
    ),
    (
        Flags(&["--instances", "3", "--set", "seed_per_instance=[1, 2]"]),
        "`seed_per_instance`",
    ),
    (
        Flags(&["--instances", "2", "--set", "p_per_instance=[0.1]"]),
        "`p_per_instance`",
    ),
    (
        Flags(&["--instances", "2", "--set", "p_per_instance=[0.1, 2.0]"]),
        "`p_per_instance`",
    ),
    (
        Flags(&["--set", "sigma_per_instance=[nan]"]),
        "`sigma_per_instance`",
    ),
    (Flags(&["--instances", "0"]), "`instances`"),
    (Flags(&["--set", "batch_size=0"]), "`batch_size`"),
    (Flags(&["--steps", "0"]), "`steps`"),
    (Flags(&["--set", "beta1=1.0"]), "`beta1`"),
    (Flags(&["--set", "eps=0"]), "`eps`"),
    (Flags(&["--set", "weight_decay=-0.01"]), "`weight_decay`"),
    (Flags(&["--set", "importance=[1.0, 2.0]"]), "`importance`"),
    (Flags(&["--set", "loss=l3"]), "`loss`"),
    (Flags(&["--set", "optimizer=sgd"]), "`optimizer`"),
    (Flags(&["--set", "schedule=exponential"]), "`schedule`"),
    (
        Flags(&["--set", "warmup_steps=100", "--set", "steps=10"]),
        "`warmup_steps`",
    ),
    (
        Flags(&["--set", "init=normal", "--set", "init_std=0"]),
        "`init_std`",
    ),
    (
        Flags(&[
            "--variant",
            "mix",
            "--set",
            "mixing=rank",
            "--set",
            "mix_rank=0",
        ]),
        "`mix_rank`",
    ),
    (
        Flags(&["--variant", "mix", "--set", "mix_diagonal=half"]),
        "`mix_diagonal`",
    ),
    (Flags(&["--set", "mix_diagonal=keep"]), "`mix_diagonal`"),
    (
        Flags(&["--variant", "mix", "--set", "mix_rank_form=uvt"]),
        "`mix_rank_form`",
    ),
    (
        Flags(&["--variant", "mix", "--set", "mix_flat_spectrum=false"]),
        "`mix_flat_spectrum`",
    ),
    (Flags(&["--set", "learn_sigma=true"]), "`learn_sigma`"),
    (
        Flags(&["--variant", "mix", "--set", "sigma_weight_decay=false"]),
        "`sigma_weight_decay`",
    ),
    (Flags(&["--set", "res_factor=inf"]), "`res_factor`"),
    (Flags(&["--set", "eval_samples=0"]), "`eval_samples`"),
    (Flags(&["--set", "bias1=maybe"]), "`bias1`"),
    (Flags(&["--set", "p"]), "--set"),
    (File("p = 0.01\nn_hidden = 0\n"), "`n_hidden`"),
    (File("p = = 3\n"), "line 1"),
    (File("n_feat = 8\n[table]\nx = 1\n"), "`table`"),
    (File("variant = 3\n"), "`variant`"),
    (Sweep("[grid]\np = [0.1, 2.0]\n"), "`p`"),
    (Sweep("[grid]\nbogus = [1, 2]\n"), "`bogus`"),
    (Sweep("[grid]\ninstances = [1, 2]\n"), "`instances`"),
    (Sweep("instances = 4\n"), "`instances`"),
    (Sweep("p_per_instance = [0.1]\n"), "`p_per_instance`"),
    (Sweep("[grid]\np = 0.1\n"), "`p`"),
    (Sweep("[grid]\nseed = []\n"), "`seed`"),
    (Sweep("[grid]\nseed = [1, 1]\n"), "`seed`"),
    (
        Sweep("[grid]\nvariant = [\"mlp\", \"nope\"]\n"),
        "`variant`",
    ),
    (
        Sweep("n_feat = 8\n[grid]\nvariant = [\"emb_res\", \"emb_res_orth\"]\nd_emb = [4, 16]\n"),
        "`d_emb`",
    ),
    (Sweep("grid = [1]\n"), "`grid`"),
    (Sweep("[grid\np = [0.1]\n"), "line 1"),
    (
        Flags(&["--set", "importance=[nan, 1, 1, 1, 1, 1, 1, 1]"]),
        "`importance`",
    ),
    (
        Sweep("n_feat = 2\nimportance = [1, nan]\n[grid]\nseed = [0, 1]\n"),
        "`importance`",
    ),
    (
        Flags(&["--set", "importance=[1, 1, 1, -0.5, 1, 1, 1, 1]"]),
        "`importance`",
    ),
    (
        Flags(&["--set", "data=exactly_k", "--set", "exactly_k=9"]),
        "`exactly_k`",
    ),
    (
        Flags(&["--set", "data=exactly_k", "--set", "exactly_k=0"]),
        "`exactly_k`",
    ),
    (Flags(&["--set", "data=exactly_k"]), "`exactly_k`"),
    (Flags(&["--set", "exactly_k=2"]), "`exactly_k`"),
    (
        Flags(&[
            "--set",
            "data=exactly_k",
            "--set",
            "exactly_k=2",
            "--set",
            "p=0.2",
        ]),
        "`p`",
    ),
    (
        Flags(&[
            "--instances",
            "2",
            "--set",
            "data=exactly_k",
            "--set",
            "exactly_k=2",
            "--set",
            "p_per_instance=[0.1, 0.2]",
        ]),
        "`p_per_instance`",
    ),
    (Flags(&["--set", "data=at_most_two"]), "`data`"),
    (Flags(&["--set", "labels=square"]), "`labels`"),
    (Flags(&["--set", "values=gaussian"]), "`values`"),
    (
        Flags(&[
            "--set",
            "importance=[1, 1, 1, 1, 1, 1, 1, 1]",
            "--set",
            "importance_decay=0.8",
        ]),
        "`importance_decay`",
    ),
    (
        Flags(&["--set", "importance_decay=-0.8"]),
        "`importance_decay`",
    ),
    (
        Flags(&["--set", "importance_decay=nan"]),
        "`importance_decay`",
    ),
    (
        Flags(&[
            "--variant",
            "mlp",
            "--set",
            "labels=abs",
            "--set",
            "res_factor=1.0",
        ]),
        "`res_factor`",
    ),
];

#[test]
fn every_invalid_config_gives_a_one_line_error_naming_the_field() {
    assert!(CASES.len() >= 20);
    let tmp = Scratch::new("invalid");
    let file = tmp.path("bad.toml");
    for (i, (input, want)) in CASES.iter().enumerate() {
        let out = tmp.path(&format!("out{i}"));
        let mut args: Vec<String> = Vec::new();
        match input {
            Flags(flags) => {
                args.extend(["train", "-q", "--out", s(&out)].map(String::from));
                args.extend(tiny());
                args.extend(flags.iter().map(|s| s.to_string()));
            }
            File(text) => {
                std::fs::write(&file, text).unwrap();
                args.extend(
                    ["train", "-q", "--config", s(&file), "--out", s(&out)].map(String::from),
                );
            }
            Sweep(text) => {
                std::fs::write(&file, text).unwrap();
                args.extend(["sweep", s(&file), "--out", s(&out)].map(String::from));
            }
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = one_line_error(&tmcc(&a));
        assert!(
            line.contains(want),
            "case {i}: expected `{want}` in: {line}"
        );
        assert!(!out.exists(), "case {i}: output directory created: {line}");
    }
}

/// A tmpfs of `size` mounted for a case (`ro`: read-only), unmounted on drop; `None`
/// where this machine does not let the test mount one (the cases are then skipped, and
/// say so).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: std::path::PathBuf, options: &str) -> Option<Self> {
        std::fs::create_dir_all(&at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs", s(&at)])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        ok.then_some(Self(at))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Every file under `dir` with its bytes (what a case must leave as it was).
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(p.clone(), Vec::new());
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// One bad input: the command line, extra environment, and a text the error line must
/// contain.
struct Case {
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    want: &'static str,
}

fn case(args: &[&str], want: &'static str) -> Case {
    Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        want,
    }
}

fn with_env(mut c: Case, env: &[(&'static str, &'static str)]) -> Case {
    c.env.extend_from_slice(env);
    c
}

/// `tmcc train -q --out OUT` with the tiny flags and `extra`.
fn train(out: &std::path::Path, extra: &[&str], want: &'static str) -> Case {
    let mut args = vec![
        "train".to_string(),
        "-q".into(),
        "--out".into(),
        s(out).into(),
    ];
    args.extend(tiny());
    args.extend(extra.iter().map(|a| a.to_string()));
    Case {
        args,
        env: Vec::new(),
        want,
    }
}

/// A copy of the checkpoint of `good` in a new run directory `name`, with its header's
/// text `from` replaced by `to` (the header length fixed up).
fn edited_run(
    tmp: &Scratch,
    good: &std::path::Path,
    name: &str,
    from: &str,
    to: &str,
) -> std::path::PathBuf {
    let bytes = std::fs::read(good.join("checkpoint.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(header.contains(from), "{from} not in the header");
    let edited = header.replacen(from, to, 1);
    let mut out = (edited.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    let dir = tmp.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(good.join("config.toml"), dir.join("config.toml")).unwrap();
    std::fs::write(dir.join("checkpoint.safetensors"), out).unwrap();
    dir
}

#[test]
fn bad_inputs_across_every_command_fail_in_one_line_and_change_nothing() {
    let tmp = Scratch::new("bad-inputs");
    let good = tmp.path("good");
    train_tiny(&good, &["--set", "steps=20", "--variant", "emb_res"]);
    let mlp = tmp.path("mlp");
    train_tiny(&mlp, &["--set", "steps=10", "--variant", "mlp"]);
    let file = tmp.path("a-file");
    std::fs::write(&file, "not a directory\n").unwrap();
    let sweep = tmp.path("sweep.toml");
    std::fs::write(&sweep, "n_feat = 8\nn_hidden = 4\nd_emb = 16\nbatch_size = 32\nsteps = 10\n[grid]\nseed = [0, 1, 2, 3]\n").unwrap();
    let no_moments = tmp.path("no-moments");
    {
        let mut ck = load(&good);
        ck.moments = None;
        std::fs::create_dir_all(&no_moments).unwrap();
        ck.save(&no_moments.join("checkpoint.safetensors")).unwrap();
    }
    // Mismatched checkpoints: a config that lies about shapes or sizes, a layout of
    // another binary, NaN in importance.
    let shape_lie = edited_run(&tmp, &good, "shape-lie", "[1,4,16]", "[1,16,4]");
    let resized = edited_run(&tmp, &good, "resized", "n_hidden = 4", "n_hidden = 5");
    let huge = edited_run(&tmp, &good, "huge", "n_feat = 8", "n_feat = 100000");
    let dtype_lie = edited_run(&tmp, &good, "dtype-lie", "\"F32\"", "\"I32\"");
    let layout = edited_run(&tmp, &good, "layout", r#"\"offset\":0"#, r#"\"offset\":9"#);
    let nan = edited_run(
        &tmp,
        &good,
        "nan-importance",
        "importance = []",
        "importance = [nan, 1, 1, 1, 1, 1, 1, 1]",
    );
    let ro = Tmpfs::mount(tmp.path("ro"), "size=1m,ro");
    let full = Tmpfs::mount(tmp.path("full"), "size=64k");
    let out = tmp.path("out");
    let o = s(&out);
    let (g, gc) = (s(&good), good.join("checkpoint.safetensors"));
    let gc = s(&gc);
    let seed_setting = [
        "--set",
        "n_feat=100",
        "--set",
        "n_hidden=50",
        "--set",
        "d_emb=1000",
        "--set",
        "batch_size=1024",
    ];
    let mut cases = vec![
        // train: memory, paths, flags, environment
        train(
            &out,
            &["--set", "n_feat=100000", "--set", "d_emb=100000"],
            "`n_feat`",
        ),
        with_env(
            train(&out, &seed_setting, "host memory"),
            &[("TMCC_MEMORY_LIMIT", "1M")],
        ),
        with_env(
            train(&out, &["--instances", "64"], "`instances`"),
            &[("TMCC_MEMORY_LIMIT", "2M")],
        ),
        train(
            &out,
            &["--set", "importance=[1, 1, 1, 1, 1, 1, 1, nan]"],
            "`importance`",
        ),
        train(&good, &[], "exists"),
        train(&good, &["--force", "--set", "p=2"], "`p`"),
        train(&file.join("run"), &[], "Not a directory"),
        train(&out, &["--bogus"], "--bogus"),
        train(&out, &["--checkpoint-every", "often"], "--checkpoint-every"),
        train(&out, &["--device", "tpu"], "auto, cpu, cuda"),
        with_env(train(&out, &[], "`tpu`"), &[("TMCC_DEVICE", "tpu")]),
        case(
            &[
                "train",
                "-q",
                "--config",
                s(&tmp.path("none.toml")),
                "--out",
                o,
            ],
            "cannot read config",
        ),
        case(
            &["train", "-q", "--config", g, "--out", o],
            "cannot read config",
        ),
        case(
            &["train", "--resume", s(&tmp.path("no-run"))],
            "no checkpoint.safetensors",
        ),
        case(&["train", "--resume", g, "--set", "p=0.2"], "only --steps"),
        case(&["train", "--resume", g, "--steps", "5"], "below"),
        case(
            &["train", "--resume", s(&no_moments), "--steps", "40"],
            "optimizer state",
        ),
        case(&["train", "--resume", s(&layout)], "layout"),
        case(&["train", "--resume", s(&shape_lie)], "expected F32"),
        case(&["train", "--resume", s(&resized)], "layout"),
        case(&["train", "--resume", g, "--out", o], "--out"),
        // eval
        case(&["eval", s(&tmp.path("nonexistent"))], "No such file"),
        case(&["eval", g, "--p", "2"], "--p"),
        case(&["eval", g, "--p", "nan"], "--p"),
        case(&["eval", g, "--samples", "0"], "--samples"),
        case(&["eval", s(&shape_lie)], "expected F32"),
        case(&["eval", s(&huge)], "expected F32"),
        case(&["eval", s(&dtype_lie)], "checkpoint"),
        case(&["eval", s(&nan)], "`importance`"),
        case(&["eval", s(&file)], "checkpoint"),
        // sweep
        case(
            &["sweep", s(&tmp.path("none.toml")), "--out", o],
            "cannot read sweep file",
        ),
        case(
            &["sweep", s(&sweep), "--out", o, "--max-instances", "0"],
            "--max-instances",
        ),
        case(
            &["sweep", s(&sweep), "--out", o, "--shard", "3/2"],
            "--shard",
        ),
        with_env(
            case(&["sweep", s(&sweep), "--out", o], "SLURM_ARRAY_TASK_ID"),
            &[("SLURM_ARRAY_TASK_ID", "x")],
        ),
        case(&["sweep", s(&sweep), "--out", g], "exists"),
        case(
            &["sweep", s(&sweep), "--out", s(&file.join("sweep"))],
            "Not a directory",
        ),
        with_env(
            case(&["sweep", s(&sweep), "--out", o], "--max-instances"),
            &[("TMCC_MEMORY_LIMIT", "2M")],
        ),
        // merge
        case(&["merge", o, s(&tmp.path("no-shard"))], "no-shard"),
        case(&["merge", o, g], "results.json"),
        case(&["merge", g, g], "results.json"),
        // plot
        case(
            &["plot", s(&tmp.path("nonexistent")), "--out", o],
            "nonexistent",
        ),
        case(&["plot", g, "--kind", "bogus", "--out", o], "--kind"),
        case(
            &["plot", g, "--out", s(&file.join("fig"))],
            "Not a directory",
        ),
        // transplant
        case(
            &["transplant", s(&tmp.path("nonexistent")), "--out", o],
            "No such file",
        ),
        case(&["transplant", gc, "--out", g], "exists"),
        case(&["transplant", s(&mlp), "--out", o], "emb"),
        case(
            &["transplant", gc, "--out", o, "--samples", "0"],
            "--samples",
        ),
        // response
        case(&["response", s(&tmp.path("nonexistent"))], "No such file"),
        case(&["response", gc, "--points", "0"], "--points"),
        case(&["response", gc, "--json", "--csv"], "--csv"),
        case(&["response", s(&layout)], "layout"),
        // one-hot and snr
        case(&["one-hot", s(&tmp.path("nonexistent"))], "No such file"),
        case(&["one-hot", gc, "--feature", "8"], "--feature"),
        case(&["one-hot", gc, "--feature", "-1"], "'-1'"),
        case(&["one-hot", s(&layout)], "layout"),
        case(&["snr", s(&tmp.path("nonexistent"))], "No such file"),
        case(&["snr", s(&layout)], "layout"),
        case(&["snr", gc, "--csv"], "--csv"),
        // reproduce, and no command at all
        case(&["reproduce", "--device", "tpu"], "auto, cpu, cuda"),
        case(&["frobnicate"], "frobnicate"),
    ];
    match &ro {
        Some(ro) => {
            cases.push(train(&ro.0.join("run"), &[], "Read-only file system"));
            cases.push(case(
                &["sweep", s(&sweep), "--out", s(&ro.0.join("sweep"))],
                "Read-only file system",
            ));
            cases.push(case(
                &["transplant", gc, "--out", s(&ro.0.join("t"))],
                "Read-only file system",
            ));
        }
        None => eprintln!("SKIPPED: cannot mount a read-only tmpfs here (not root?): its 3 cases"),
    }
    if tmcc_lab::runner::Device::select(tmcc_lab::runner::DeviceChoice::Cuda).is_err() {
        cases.push(train(&out, &["--device", "cuda"], "--device cuda"));
    }
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let before = snapshot(&tmp.0);
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let o = tmcc_in(None, &args, &c.env);
        let checked = std::panic::catch_unwind(|| {
            let line = one_line_error(&o);
            assert!(line.contains(c.want), "expected `{}` in: {line}", c.want);
            // one cause, said once: no part of the line repeats
            let parts: Vec<&str> = line.trim_start_matches("error: ").split(": ").collect();
            for (a, pa) in parts.iter().enumerate() {
                for pb in &parts[a + 1..] {
                    assert!(pa.len() < 12 || pa != pb, "`{pa}` said twice: {line}");
                }
            }
        });
        if let Err(e) = checked {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("case {i} {:?}: {msg}", &args[..args.len().min(6)]));
        }
        if before != snapshot(&tmp.0) {
            failures.push(format!("case {i} {args:?} changed the scratch directory"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{} bad inputs checked", cases.len());

    // A full disk: the run stops with one line naming the cause; it leaves no temporary
    // file, and every file it did write is whole.
    match &full {
        Some(full) => {
            let run = full.0.join("run");
            let c = train(&run, &seed_setting, "No space left");
            let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
            let line = one_line_error(&tmcc(&args));
            assert!(line.contains(c.want), "{line}");
            for e in std::fs::read_dir(&run).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(
                    !tmcc_model::io::is_temp_name(&name),
                    "temporary file left: {name}"
                );
                if name == "config.toml" {
                    tmcc_model::Config::from_toml_str(&std::fs::read_to_string(e.path()).unwrap())
                        .unwrap();
                }
            }
        }
        None => {
            eprintln!("SKIPPED: cannot mount a 64 KiB tmpfs here (not root?): the full-disk case")
        }
    }
}
