//! Corrupt and truncated checkpoints: every command that reads one fails with one line
//! naming the checkpoint, exit code 2, no panic, and creates no output directory.

mod common;

use common::*;

/// Damaged copies of a valid checkpoint: (name, bytes).
fn damaged(good: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut v = vec![
        ("empty", Vec::new()),
        ("seven bytes", good[..7].to_vec()),
        (
            "truncated in the header",
            good[..8 + header_len / 2].to_vec(),
        ),
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("last byte missing", good[..good.len() - 1].to_vec()),
    ];
    let mut huge = good.to_vec();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    v.push(("header length corrupt", huge));
    let mut garbage = good.to_vec();
    for b in &mut garbage[8..8 + header_len.min(64)] {
        *b = b'#';
    }
    v.push(("header garbage", garbage));
    let text = String::from_utf8_lossy(good).into_owned();
    let swap = |from: &str, to: &str| {
        assert_eq!(from.len(), to.len());
        let i = text.find(from).expect("header text present");
        let mut b = good.to_vec();
        b[i..i + to.len()].copy_from_slice(to.as_bytes());
        b
    };
    v.push((
        "foreign format",
        swap("tmcc-checkpoint/1", "tmcc-checkpoint/9"),
    ));
    v.push(("renamed tensor", swap("\"W1\"", "\"Wx\"")));
    v.push(("not safetensors", b"this is not a checkpoint\n".repeat(10)));
    v
}

#[test]
fn damaged_checkpoints_give_a_clear_one_line_error() {
    let tmp = Scratch::new("damaged");
    let good_dir = tmp.path("good");
    train_tiny(&good_dir, &["--set", "steps=20", "--variant", "emb_res"]);
    let good = std::fs::read(good_dir.join("checkpoint.safetensors")).unwrap();
    let cases = damaged(&good);
    assert!(cases.len() >= 8);
    for (i, (name, bytes)) in cases.iter().enumerate() {
        let run = tmp.path(&format!("run{i}"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::copy(good_dir.join("config.toml"), run.join("config.toml")).unwrap();
        let ck = run.join("checkpoint.safetensors");
        std::fs::write(&ck, bytes).unwrap();
        let out = tmp.path(&format!("out{i}"));
        let commands: Vec<Vec<&str>> = vec![
            vec!["eval", s(&ck)],
            vec!["eval", s(&run)],
            vec!["response", s(&ck)],
            vec!["transplant", s(&ck), "--out", s(&out)],
            vec!["plot", s(&run), "--out", s(&out)],
            vec!["train", "--resume", s(&run)],
        ];
        for args in commands {
            let line = one_line_error(&tmcc(&args));
            assert!(
                line.contains("checkpoint") && line.contains(s(&ck)),
                "{name}, `{}`: {line}",
                args[0]
            );
            assert!(
                !out.exists(),
                "{name}, `{}` created {}",
                args[0],
                out.display()
            );
        }
        // The damaged file is left as it was (a resume never rewrites what it cannot read).
        assert_eq!(&std::fs::read(&ck).unwrap(), bytes, "{name}");
    }
    // The undamaged original still loads and evaluates.
    ok(&tmcc(&["eval", s(&good_dir)]));
}
