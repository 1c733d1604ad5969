//! Fuzzing of the config parsers (proptest; runs under `cargo test`): the TOML reader
//! `Config::from_toml_str` and the `--set FIELD=VALUE` parser `Config::set_str`, on
//! arbitrary text and on documents made of real field names with wild values. Neither
//! may panic; every error is one line; a config that validates has a memory estimate
//! (which must not panic either, whatever its sizes).
//!
//! Cases per property: 256, or `TMCC_FUZZ_CASES` for long runs. Cases proptest finds are
//! kept in `fuzz_config.proptest-regressions` and rerun first. The named tests at the end
//! pin two edge cases: text with multi-byte characters before a syntax error, and sizes
//! whose products overflow (`validate` once passed them, and the layout then multiplied
//! them unchecked).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tmcc_model::memory::{Estimate, Placement};
use tmcc_model::Config;

fn cases() -> u32 {
    std::env::var("TMCC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// A value as a user might type one, valid or not.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1e400".to_string()),
        Just("18446744073709551616".to_string()),
        "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "[a-z_]{0,12}",
        prop::collection::vec(-1e3f64..1e3, 0..6).prop_map(|v| format!("{v:?}")),
        Just("[nan, 1.0]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("true".to_string()),
        "\\PC{0,16}",
    ]
}

fn field() -> impl Strategy<Value = String> {
    let names = Config::field_names();
    prop_oneof![
        4 => prop::sample::select(names),
        1 => "[a-z_]{1,10}",
        1 => "\\PC{0,8}",
    ]
}

#[track_caller]
fn one_line(e: &impl std::fmt::Display) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "error over several lines: {text:?}");
    assert!(!text.is_empty());
}

/// A config that validates can be estimated (the estimate must not overflow or panic).
fn estimate_if_valid(cfg: &Config) {
    if cfg.validate().is_ok() {
        for placement in [Placement::cpu(2), Placement::device()] {
            let est = Estimate::of_run(cfg, placement);
            assert!(est.peak(false).1.is_finite() && est.peak(true).1 >= 0.0);
            let _ = tmcc_model::memory::check(cfg, placement, Some(1e9), Some(1e9));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_is_a_config_or_a_one_line_error(text in "\\PC{0,200}") {
        match Config::from_toml_str(&text) {
            Ok(cfg) => estimate_if_valid(&cfg),
            Err(e) => one_line(&e),
        }
    }

    #[test]
    fn documents_of_real_fields_parse_or_fail_in_one_line(
        lines in prop::collection::vec((field(), value()), 0..8)
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        match Config::from_toml_str(&text) {
            Ok(cfg) => estimate_if_valid(&cfg),
            Err(e) => one_line(&e),
        }
    }

    #[test]
    fn set_str_takes_anything_without_panicking(
        sets in prop::collection::vec((field(), value()), 1..6)
    ) {
        let mut cfg = Config::default();
        for (k, v) in &sets {
            if let Err(e) = cfg.set_str(k, v) {
                one_line(&e);
            }
        }
        if let Err(e) = cfg.validate() {
            one_line(&e);
        }
        estimate_if_valid(&cfg);
    }

    #[test]
    fn sizes_anywhere_in_range_are_validated_and_estimated(
        n_feat in 1usize..=usize::MAX, n_hidden in 1usize..=usize::MAX,
        d_emb in 1usize..=usize::MAX, instances in 1usize..=usize::MAX,
        batch in 1usize..=usize::MAX, shift in 0u32..64,
    ) {
        let cfg = Config {
            n_feat: n_feat >> shift, n_hidden: n_hidden >> shift, d_emb: d_emb >> shift,
            instances: instances >> shift, batch_size: batch >> shift, eval_batch: batch >> shift,
            ..Config::default()
        };
        match cfg.validate() {
            Ok(()) => estimate_if_valid(&cfg),
            Err(e) => one_line(&e),
        }
    }
}

/// A syntax error after a multi-byte character (its line number is counted on a byte
/// offset).
#[test]
fn a_syntax_error_after_a_multibyte_character() {
    for text in ["é = = 1", "p = \"ü", "n_feat = 8\n\u{1F600} = [", "\u{a0}"] {
        if let Err(e) = Config::from_toml_str(text) {
            one_line(&e);
        }
    }
}

/// Sizes whose product overflows are refused by `validate`, before any estimate.
#[test]
fn overflowing_sizes_are_a_config_error() {
    let cfg = Config {
        n_hidden: 1 << 30,
        d_emb: 1 << 40,
        ..Config::default()
    };
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.field, "n_hidden", "{e}");
    assert!(e.to_string().contains("2^56"), "{e}");
}
