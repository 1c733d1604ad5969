//! `--device auto|cpu|cuda`: a bad value and `cuda` without a usable device are one clear
//! error that writes nothing; `auto` falls back to the CPU with one line saying why; the
//! run records its device in metrics.json.

mod common;

use common::*;
use tmcc_lab::runner::{Device, DeviceChoice};

fn train_on(out: &std::path::Path, device: &str) -> std::process::Output {
    let mut args: Vec<String> = ["train", "-q", "--out", s(out), "--device", device]
        .map(String::from)
        .to_vec();
    args.extend(tiny());
    args.extend(["--set".into(), "steps=20".into()]);
    tmcc(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn metrics_device(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("metrics.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["device"].as_str().unwrap().to_string()
}

#[test]
fn an_unknown_device_names_the_allowed_values_and_writes_nothing() {
    let tmp = Scratch::new("device");
    let out = tmp.path("run");
    let o = train_on(&out, "tpu");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--device") && err.contains("auto, cpu, cuda"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn cpu_auto_and_cuda_behave_as_documented() {
    let tmp = Scratch::new("device");
    let cpu = tmp.path("cpu");
    ok(&train_on(&cpu, "cpu"));
    assert!(metrics_device(&cpu).starts_with("cpu"));

    let auto = tmp.path("auto");
    let o = train_on(&auto, "auto");
    ok(&o);
    let cuda = tmp.path("cuda");
    match Device::select(DeviceChoice::Cuda) {
        Ok(_) => {
            assert!(metrics_device(&auto).starts_with("cuda"));
            ok(&train_on(&cuda, "cuda"));
            assert!(metrics_device(&cuda).starts_with("cuda"));
        }
        Err(why) => {
            eprintln!("no CUDA device here ({why}): checking the fall-back and the error");
            let err = stderr(&o);
            let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note:")).collect();
            assert_eq!(notes.len(), 1, "{err}");
            assert!(notes[0].contains("using the CPU"), "{}", notes[0]);
            assert!(metrics_device(&auto).starts_with("cpu"));
            let o = train_on(&cuda, "cuda");
            assert_eq!(o.status.code(), Some(2));
            let err = stderr(&o);
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(err.starts_with("error: --device cuda: "), "{err}");
            assert!(!cuda.exists());
        }
    }
}

/// Without a GPU, the fall-back note is shown only for an explicit `auto` or `-v`, and
/// `metrics.json` keeps it in every case.
#[test]
fn the_fallback_note_is_shown_only_when_asked_for_and_always_recorded() {
    if Device::select(DeviceChoice::Cuda).is_ok() {
        eprintln!("a CUDA device is here: `auto` does not fall back; nothing to check");
        return;
    }
    let tmp = Scratch::new("device-note");
    let run = |name: &str, extra: &[&str], env_device: Option<&str>| {
        let out = tmp.path(name);
        let mut c = std::process::Command::new(BIN);
        c.args(["train", "-q", "--out", s(&out)]).args(tiny());
        c.args(["--set", "steps=10"]).args(extra);
        c.env_remove("TMCC_DEVICE");
        if let Some(d) = env_device {
            c.env("TMCC_DEVICE", d);
        }
        let o = c.output().unwrap();
        ok(&o);
        let text = std::fs::read_to_string(out.join("metrics.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let note = v["device_note"].as_str().unwrap_or_default().to_string();
        (
            stderr(&o).lines().any(|l| l.starts_with("note: no CUDA")),
            note,
        )
    };
    for (name, extra, env, shown) in [
        ("default", &[][..], None, false),
        ("flag", &["--device", "auto"][..], None, true),
        ("env", &[][..], Some("auto"), true),
        ("verbose", &["-v"][..], None, true),
    ] {
        let (printed, recorded) = run(name, extra, env);
        assert_eq!(printed, shown, "{name}");
        assert!(recorded.contains("using the CPU"), "{name}: {recorded:?}");
    }
}
