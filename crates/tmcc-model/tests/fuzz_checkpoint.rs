//! Fuzzing of the checkpoint loader (proptest; runs under `cargo test`): valid
//! checkpoints of every variant, damaged by arbitrary bytes, truncation, byte flips in the
//! header, edits of its shapes and dtypes, and configs that declare huge sizes. Loading
//! never panics, returns an error or a checkpoint, and allocates no more than the file
//! justifies: a counting global allocator measures the peak of the heap during each load,
//! which must stay below [`ALLOWED`]·(file size) + 1 MiB.
//!
//! Cases per strategy: 64, or `TMCC_FUZZ_CASES` for long runs. The peak of every case is
//! measured, so this file has one test that runs the strategies one after another.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::{Config, Model};

/// Heap bytes in use, and the most in use since the last reset.
static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Held by each test: the counters are the process's, so tests measure one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Heap growth during a load may be this many times the file's size (the file is read
/// once, the model holds about as much in `f32`, and one instance's `f64` init scratch).
const ALLOWED: usize = 6;

fn cases() -> u32 {
    std::env::var("TMCC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Valid checkpoints of small models of several variants, with and without Adam state.
fn seeds(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (variant, moments)) in [
        ("emb_res", true),
        ("mix", true),
        ("mlp", false),
        ("res_mlp", true),
    ]
    .iter()
    .enumerate()
    {
        let mut cfg = Config {
            n_feat: 6,
            n_hidden: 3,
            d_emb: 8,
            instances: 2,
            bias1: i % 2 == 0,
            ..Config::default()
        };
        cfg.set_str("variant", variant).unwrap();
        let model = Model::<f32>::new(&cfg).unwrap();
        let n = model.params.len();
        let ck = Checkpoint {
            model,
            step: 7,
            moments: moments.then(|| (vec![0.5; n], vec![0.25; n])),
            stream_positions: Some(vec![3, 4]),
        };
        let path = dir.join(format!("seed{i}.safetensors"));
        ck.save(&path).unwrap();
        out.push(std::fs::read(&path).unwrap());
    }
    out
}

/// A damage done to a valid file.
#[derive(Clone, Debug)]
enum Damage {
    Arbitrary(Vec<u8>),
    Truncate(usize),
    FlipHeader {
        at: usize,
        byte: u8,
    },
    /// Replace the `n`-th occurrence of `from` in the header by `to` (any length; the
    /// declared header length is fixed up so the edit is parsed).
    Edit {
        from: &'static str,
        to: String,
        n: usize,
    },
    HeaderLength(u64),
}

fn header_len(b: &[u8]) -> usize {
    b.get(..8)
        .map(|h| u64::from_le_bytes(h.try_into().unwrap()) as usize)
        .unwrap_or(0)
}

fn apply(good: &[u8], damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::Arbitrary(bytes) => bytes.clone(),
        Damage::Truncate(n) => good[..n % (good.len() + 1)].to_vec(),
        Damage::FlipHeader { at, byte } => {
            let mut b = good.to_vec();
            let end = (8 + header_len(good)).min(b.len());
            b[at % end] ^= byte | 1;
            b
        }
        Damage::Edit { from, to, n } => {
            let end = 8 + header_len(good);
            let header = String::from_utf8_lossy(&good[8..end]).into_owned();
            let hits: Vec<usize> = header.match_indices(from).map(|(i, _)| i).collect();
            if hits.is_empty() {
                return good.to_vec();
            }
            let i = hits[n % hits.len()];
            let edited = format!("{}{}{}", &header[..i], to, &header[i + from.len()..]);
            let mut b = (edited.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(edited.as_bytes());
            b.extend_from_slice(&good[end..]);
            b
        }
        Damage::HeaderLength(v) => {
            let mut b = good.to_vec();
            b[..8].copy_from_slice(&v.to_le_bytes());
            b
        }
    }
}

fn damage() -> impl Strategy<Value = Damage> {
    // Numbers that make declared sizes huge, negative, or not numbers at all.
    let number = prop_oneof![
        Just("0".to_string()),
        Just("100000".to_string()),
        Just("4294967296".to_string()),
        Just("18446744073709551615".to_string()),
        Just("-1".to_string()),
        Just("1e9".to_string()),
        any::<u32>().prop_map(|v| v.to_string()),
    ];
    let from = prop::sample::select(vec![
        "n_feat = 6",
        "n_hidden = 3",
        "d_emb = 8",
        "instances = 2",
        "\"F32\"",
        "\"shape\":[2,",
        "[2,3,8]",
        "\"data_offsets\":[",
        "step",
        "variant = ",
        r#"\"offset\":"#,
        r#"\"len\":"#,
        "stream_positions\":\"3,4",
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400).prop_map(Damage::Arbitrary),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::FlipHeader { at, byte }),
        (from, number, any::<usize>()).prop_map(|(from, num, n)| {
            let to = match from {
                "\"F32\"" => ["\"F64\"", "\"BF16\"", "\"U8\"", "\"I64\""][n % 4].to_string(),
                "variant = " => format!("{}\"mix\" #", from),
                f if f.ends_with('[') || f.ends_with(':') || f.ends_with(',') => {
                    format!("{f}{num},")
                }
                f if f.contains(" = ") => format!("{} = {num}", f.split(" = ").next().unwrap()),
                f => format!("{f}{num}"),
            };
            Damage::Edit { from, to, n }
        }),
        prop_oneof![Just(u64::MAX), Just(1u64 << 40), any::<u64>(), 0u64..2000]
            .prop_map(Damage::HeaderLength),
    ]
}

#[test]
fn damaged_checkpoints_load_or_fail_without_panic_or_oversized_allocation() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("tmcc-fuzz-ck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = seeds(&dir);
    let path = dir.join("damaged.safetensors");
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases() * 8,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let (loaded, failed) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    let result = runner.run(&(0..good.len(), damage()), |(which, dmg)| {
        let bytes = apply(&good[which], &dmg);
        std::fs::write(&path, &bytes).unwrap();
        let before = IN_USE.load(Ordering::SeqCst);
        PEAK.store(before, Ordering::SeqCst);
        let outcome = Checkpoint::<f32>::load(&path);
        let grew = PEAK.load(Ordering::SeqCst).saturating_sub(before);
        match &outcome {
            Ok(_) => loaded.set(loaded.get() + 1),
            Err(e) => {
                failed.set(failed.get() + 1);
                let text = e.to_string();
                prop_assert!(!text.contains('\n'), "{text:?}");
                prop_assert!(text.contains(path.to_str().unwrap()), "{text}");
            }
        }
        drop(outcome);
        prop_assert!(
            grew <= ALLOWED * bytes.len() + (1 << 20),
            "load of a {}-byte file grew the heap by {grew} bytes ({dmg:?})",
            bytes.len()
        );
        Ok(())
    });
    let (loaded, failed) = (loaded.get(), failed.get());
    eprintln!(
        "checkpoint fuzz: {} cases, {loaded} loaded, {failed} refused",
        loaded + failed
    );
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
    assert!(failed > 0);
}

/// A config in the header that declares huge sizes (the tensors unchanged) is refused
/// before the model is built: the old loader built the declared model first.
#[test]
fn a_header_declaring_a_huge_model_is_refused_before_allocating() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("tmcc-fuzz-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = &seeds(&dir)[0];
    let path = dir.join("huge.safetensors");
    // With the layout metadata the layout check refuses first (it depends on `d_emb`);
    // without it, the tensor shapes do.
    let hidden_layout = apply(
        good,
        &Damage::Edit {
            from: "\"layout\":",
            to: "\"layouX\":".into(),
            n: 0,
        },
    );
    for (base, layout_kept) in [(good, true), (&hidden_layout, false)] {
        for (from, to) in [
            ("n_feat = 6", "n_feat = 100000"),
            ("d_emb = 8", "d_emb = 1000000000"),
            ("instances = 2", "instances = 50000"),
        ] {
            let edit = Damage::Edit {
                from,
                to: to.to_string(),
                n: 0,
            };
            std::fs::write(&path, apply(base, &edit)).unwrap();
            let e = Checkpoint::<f32>::load(&path).unwrap_err().to_string();
            let want = match (layout_kept, from) {
                (true, "d_emb = 8") => "layout",
                _ => "expected F32",
            };
            assert!(e.contains(want), "{from}: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
