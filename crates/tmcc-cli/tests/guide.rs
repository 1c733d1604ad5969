//! docs/guide.md stays true: its Python snippets load a real checkpoint (when Python has
//! `safetensors` and `numpy`; skipped with a visible message otherwise), its sweep file
//! parses and expands, and every `tmcc` subcommand it shows exists.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use tmcc_lab::sweep::SweepSpec as Sweep;

fn guide() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/guide.md");
    std::fs::read_to_string(&path).expect("docs/guide.md")
}

/// The fenced code blocks of `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match &mut cur {
            None if line.trim_start() == format!("```{lang}") => cur = Some(String::new()),
            Some(b) if line.trim_start() == "```" => {
                out.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Printed even though the test harness captures output (written to the stderr handle).
fn visible(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

#[test]
fn python_snippets_load_a_checkpoint() {
    let snippets = blocks(&guide(), "python");
    assert!(snippets.len() >= 2, "the guide lost its Python snippets");
    assert!(
        snippets[0].lines().count() <= 5,
        "the first snippet should stay five lines"
    );
    let have = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        visible(
            "SKIPPED guide::python_snippets_load_a_checkpoint: python3 with safetensors and \
             numpy not found (pip install safetensors numpy)",
        );
        return;
    }
    let tmp = Scratch::new("guide");
    train_tiny(
        &tmp.path("runs/emb_res"),
        &[
            "--variant",
            "emb_res",
            "--instances",
            "2",
            "--set",
            "steps=10",
        ],
    );
    for (i, code) in snippets.iter().enumerate() {
        let o = Command::new("python3")
            .args(["-c", code])
            .current_dir(&tmp.0)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "snippet {i} failed:\n{code}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        match i {
            0 => assert!(
                out.contains("'W1': (2, 4, 16)") && out.contains("(2, 8)"),
                "{out}"
            ),
            1 => assert!(out.starts_with("10 "), "{out}"),
            _ => {}
        }
    }
}

#[test]
fn sweep_file_of_the_guide_expands() {
    let sweeps: Vec<String> = blocks(&guide(), "toml")
        .into_iter()
        .filter(|b| b.contains("[grid]"))
        .collect();
    assert!(!sweeps.is_empty());
    for text in sweeps {
        let s = Sweep::from_toml_str(&text).unwrap();
        assert_eq!(s.expand().unwrap().len(), 24);
    }
}

#[test]
fn every_command_of_the_guide_exists() {
    let text = guide();
    let mut subs: Vec<String> = blocks(&text, "sh")
        .iter()
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("tmcc")).then(|| words.next().unwrap_or("").to_string())
        })
        .collect();
    subs.sort();
    subs.dedup();
    assert!(subs.len() >= 7, "{subs:?}");
    for sub in subs {
        ok(&tmcc(&[&sub, "--help"]));
    }
}
