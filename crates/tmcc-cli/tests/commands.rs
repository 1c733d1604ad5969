//! `tmcc plot`, `tmcc transplant`, `tmcc response`, `tmcc one-hot` and `tmcc snr` on tiny
//! runs and sweeps.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::Param;

fn is_png(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn presets_list_print_and_train_with_overrides() {
    let list = stdout(ok(&tmcc(&["presets"]))).to_string();
    for p in tmcc_model::presets::all() {
        assert!(
            list.lines()
                .any(|l| l.starts_with(p.name) && l.contains(p.summary)),
            "{list}"
        );
    }
    let text = stdout(ok(&tmcc(&["presets", "apd-1layer"]))).to_string();
    assert!(
        text.contains("ANCHORS.md") && text.contains("init_bound"),
        "{text}"
    );
    let e = one_line_error(&tmcc(&["presets", "apd-9layer"]));
    assert!(e.contains("seed-notebook"), "{e}");
    // The preset is the base; the tiny flags (and --set) override it.
    let tmp = Scratch::new("presets");
    let run = tmp.path("apd");
    train_tiny(&run, &["--preset", "apd-1layer", "--set", "steps=20"]);
    let cfg = load(&run).model.cfg;
    let preset = tmcc_model::presets::load("apd-1layer").unwrap();
    assert_eq!((cfg.n_feat, cfg.steps), (8, 20));
    assert_eq!(
        (cfg.lr, cfg.schedule, cfg.init),
        (preset.lr, preset.schedule, preset.init)
    );
}

#[test]
fn plot_draws_run_and_sweep_figures() {
    let tmp = Scratch::new("plot");
    let run = tmp.path("mix");
    train_tiny(
        &run,
        &["--variant", "mix", "--instances", "2", "--set", "steps=30"],
    );
    let o = ok(&tmcc(&["plot", s(&run)])).clone();
    let paths: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(paths.len(), 4, "{paths:?}");
    for name in ["loss", "response", "weights", "mix"] {
        assert!(
            is_png(&run.join("figures").join(format!("{name}.png"))),
            "{name}"
        );
    }
    let svg = tmp.path("w.svg");
    ok(&tmcc(&[
        "plot",
        s(&run),
        "--kind",
        "mix",
        "--instance",
        "1",
        "--out",
        s(&svg),
    ]));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let e = one_line_error(&tmcc(&[
        "plot",
        s(&run),
        "--kind",
        "mix",
        "--instance",
        "5",
    ]));
    assert!(e.contains("--instance"), "{e}");
    let e = one_line_error(&tmcc(&["plot", s(&run), "--x", "p"]));
    assert!(e.contains("--x"), "{e}");
    // A model without a residual mixing term: no mix figure unless asked for.
    let mlp = tmp.path("mlp");
    train_tiny(&mlp, &["--variant", "mlp", "--set", "steps=10"]);
    assert_eq!(
        stdout(ok(&tmcc(&["plot", s(&mlp), "--out", s(&tmp.path("f"))])))
            .lines()
            .count(),
        3
    );
    assert!(is_png(&tmp.path("f/weights.png")));

    let file = tmp.path("sweep.toml");
    std::fs::write(
        &file,
        "n_feat = 8\nn_hidden = 4\nbatch_size = 32\nsteps = 20\neval_samples = 1000\n\
         [grid]\nvariant = [\"mlp\", \"res_mlp\"]\np = [0.05, 0.2]\nseed = [0, 1]\n",
    )
    .unwrap();
    let sw = tmp.path("sweep");
    ok(&tmcc(&["sweep", s(&file), "--out", s(&sw), "-q"]));
    let o = ok(&tmcc(&["plot", s(&sw)])).clone();
    assert_eq!(
        stdout(&o).trim(),
        s(&sw.join("figures/loss_over_naive_vs_p.png"))
    );
    assert!(is_png(&sw.join("figures/loss_over_naive_vs_p.png")));
    ok(&tmcc(&[
        "plot",
        s(&sw),
        "--x",
        "variant",
        "--out",
        s(&tmp.path("bars.png")),
    ]));
    assert!(is_png(&tmp.path("bars.png")));
    let e = one_line_error(&tmcc(&["plot", s(&sw), "--x", "lr"]));
    assert!(e.contains("lr") && e.contains("swept"), "{e}");
    let e = one_line_error(&tmcc(&["plot", s(&sw), "--kind", "response"]));
    assert!(e.contains("sweep directory"), "{e}");
    // A group of the sweep is a run directory.
    let group = sw.join("runs/000000-000003");
    assert_eq!(stdout(ok(&tmcc(&["plot", s(&group)]))).lines().count(), 3);
}

#[test]
fn transplant_writes_a_model_and_a_same_stream_comparison() {
    let tmp = Scratch::new("transplant");
    let src = tmp.path("emb");
    train_tiny(
        &src,
        &[
            "--variant",
            "emb_res",
            "--instances",
            "2",
            "--set",
            "steps=30",
        ],
    );
    let out = tmp.path("moved");
    let o = ok(&tmcc(&["transplant", s(&src), "--out", s(&out), "--json"])).clone();
    let printed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("transplant.json")).unwrap())
            .unwrap();
    assert_eq!(printed, saved);
    assert_eq!(saved["source_variant"], "emb_res");
    assert_eq!(saved["target_variant"], "res_mlp");
    assert_eq!(saved["instances"].as_array().unwrap().len(), 2);
    let ck = Checkpoint::<f32>::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.model.cfg.variant.name(), "res_mlp");
    assert_eq!(ck.model.layout.get(Param::W1).unwrap().shape, vec![4, 8]);
    // The comparison's numbers are what `tmcc eval` gives for either model.
    let eval = |dir: &Path| -> Value {
        serde_json::from_str(&stdout(ok(&tmcc(&["eval", s(dir), "--json"])))).unwrap()
    };
    for (k, (a, b)) in eval(&src)
        .as_array()
        .unwrap()
        .iter()
        .zip(eval(&out).as_array().unwrap())
        .enumerate()
    {
        assert_eq!(&saved["instances"][k]["original"], a);
        assert_eq!(&saved["instances"][k]["transplant"], b);
    }
    // Never over an existing directory without --force; only embedding variants.
    let e = one_line_error(&tmcc(&["transplant", s(&src), "--out", s(&out)]));
    assert!(e.contains("--force"), "{e}");
    ok(&tmcc(&["transplant", s(&src), "--out", s(&out), "--force"]));
    let mlp = tmp.path("mlp");
    train_tiny(&mlp, &["--variant", "mlp", "--set", "steps=5"]);
    let e = one_line_error(&tmcc(&["transplant", s(&mlp), "--out", s(&tmp.path("no"))]));
    assert!(e.contains("embedding"), "{e}");
    assert!(!tmp.path("no").exists());
}

#[test]
fn response_reports_counts_and_per_feature_classes() {
    let tmp = Scratch::new("response");
    let run = tmp.path("l1");
    train_tiny(
        &run,
        &[
            "--variant",
            "res_mlp",
            "--instances",
            "3",
            "--set",
            "steps=30",
            "--set",
            "loss=l1",
        ],
    );
    let json: Value = serde_json::from_str(&stdout(ok(&tmcc(&[
        "response",
        s(&run),
        "--json",
        "--points",
        "21",
    ]))))
    .unwrap();
    assert_eq!(json["tolerance"], 0.2);
    assert_eq!(json["points"], 21);
    let inst = json["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 3);
    for i in inst {
        let n = ["computed", "zero", "partial"]
            .iter()
            .map(|c| i[c].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(n, 8);
        assert_eq!(i["features"].as_array().unwrap().len(), 8);
    }
    let csv = stdout(ok(&tmcc(&["response", s(&run), "--csv"]))).clone();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "instance,seed,p,feature,class,err_computed,err_zero"
    );
    assert_eq!(lines.len(), 1 + 3 * 8);
    assert!(lines[1..]
        .iter()
        .all(|l| ["computed", "zero", "partial"].contains(&l.split(',').nth(4).unwrap())));
    let table = stdout(ok(&tmcc(&["response", s(&run)]))).clone();
    assert!(table.contains("instance,seed,p,computed,zero,partial") && table.contains("0.2"));
    let e = one_line_error(&tmcc(&["response", s(&run), "--points", "2"]));
    assert!(e.contains("--points"), "{e}");
}

/// On a 2-block model: one CSV row per instance and feature whose skip and block shares
/// add up to the output (identity output), `--feature` keeps one; `tmcc snr` gives one row
/// per instance and input setting.
#[test]
fn one_hot_and_snr_on_a_deep_model() {
    let tmp = Scratch::new("one-hot");
    let run = tmp.path("deep");
    train_tiny(
        &run,
        &[
            "--instances",
            "2",
            "--set",
            "steps=20",
            "--set",
            "n_layers=2",
            "--set",
            "d_mlp=[3, 2]",
        ],
    );
    let csv = stdout(ok(&tmcc(&["one-hot", s(&run)]))).clone();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "instance,feature,out,label,skip,block0,block1");
    assert_eq!(lines.len(), 1 + 2 * 8);
    for l in &lines[1..] {
        let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
        assert!((v[4] + v[5] + v[6] - v[2]).abs() < 1e-4, "{l}");
    }
    let one = stdout(ok(&tmcc(&["one-hot", s(&run), "--feature", "3"]))).clone();
    assert_eq!(one.lines().count(), 3, "{one}");
    assert!(one
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(1) == Some("3")));
    let json: Value =
        serde_json::from_str(&stdout(ok(&tmcc(&["one-hot", s(&run), "--json"])))).unwrap();
    assert_eq!(json["n_layers"], 2);
    assert_eq!(
        json["instances"][1]["features"].as_array().unwrap().len(),
        8
    );
    let snr = stdout(ok(&tmcc(&["snr", s(&run)]))).clone();
    let rows: Vec<&str> = snr.lines().collect();
    assert_eq!(rows[0], "instance,input,count,mean,min,q05,median");
    assert_eq!(rows.len(), 1 + 2 * 3, "{snr}");
    assert!(rows[2].starts_with("0,pair (1, 1),56,"), "{snr}");
    let json: Value =
        serde_json::from_str(&stdout(ok(&tmcc(&["snr", s(&run), "--json"])))).unwrap();
    assert_eq!(json[1]["pairs"][1]["values"][1], -1.0);
}
