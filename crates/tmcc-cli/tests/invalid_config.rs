//! Every invalid config input gives exit code 2, one stderr line naming the field, no
//! panic, and no output directory — through `tmcc train` (flags and config files) and
//! `tmcc sweep` (sweep files).

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
    (Flags(&["--set", "variant=transformer"]), "`variant`"),
    (Flags(&["--set", "no_such_field=1"]), "`no_such_field`"),
    (Flags(&["--preset", "apd-9layer"]), "`preset`"),
    (
        Sweep("preset = \"apd-9layer\"\n[grid]\nseed = [0]"),
        "`preset`",
    ),
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
