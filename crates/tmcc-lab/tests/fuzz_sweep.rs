//! Fuzzing of the sweep parser (proptest; runs under `cargo test`): `SweepSpec` on
//! arbitrary text and on sweep files built from real field names with wild grids, the
//! expansion and grouping of the runs, the memory check of every group, and the shard
//! syntax `K/N`. Nothing may panic; every error is one line.
//!
//! Cases per property: 256, or `TMCC_FUZZ_CASES` for long runs; found cases are kept in
//! `fuzz_sweep.proptest-regressions` and rerun first.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use tmcc_lab::runner::Device;
use tmcc_lab::sweep::{ShardPlan, SweepShard, SweepSpec};
use tmcc_model::Config;

fn cases() -> u32 {
    std::env::var("TMCC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        (-3i64..200).prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        (-1.0f64..2.0).prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("\"mix\"".to_string()),
        Just("\"emb_res\"".to_string()),
        Just("\"nope\"".to_string()),
        Just("true".to_string()),
        "[a-z]{0,6}",
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(Config::field_names()),
        1 => Just("grid".to_string()),
        1 => "[a-z_]{1,8}",
    ]
}

fn sweep_file() -> impl Strategy<Value = String> {
    let base = prop::collection::vec((field(), scalar()), 0..4);
    let grid = prop::collection::vec((field(), prop::collection::vec(scalar(), 0..4)), 0..4);
    (base, grid, any::<bool>()).prop_map(|(base, grid, with_grid)| {
        let mut text: String = base.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        if with_grid {
            text.push_str("[grid]\n");
            for (k, vs) in grid {
                text.push_str(&format!("{k} = [{}]\n", vs.join(", ")));
            }
        }
        text
    })
}

#[track_caller]
fn one_line(e: &impl std::fmt::Display) {
    let text = e.to_string();
    assert!(!text.contains('\n') && !text.is_empty(), "{text:?}");
}

/// Parses, expands, groups and checks the memory of a sweep file; every error one line.
fn exercise(text: &str, max_instances: usize) {
    let spec = match SweepSpec::from_toml_str(text) {
        Ok(s) => s,
        Err(e) => return one_line(&e),
    };
    if spec.n_runs() > 4096 {
        return; // expansion is bounded by MAX_RUNS; keep the fuzz fast
    }
    let runs = match spec.expand() {
        Ok(r) => r,
        Err(e) => return one_line(&e),
    };
    match ShardPlan::new(runs, SweepShard::WHOLE, max_instances) {
        Ok(plan) => {
            if let Err(e) = plan.check_memory(&Device::Cpu) {
                one_line(&e);
            }
        }
        Err(e) => one_line(&e),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_is_a_sweep_or_a_one_line_error(text in "\\PC{0,200}") {
        exercise(&text, 64);
    }

    #[test]
    fn sweep_files_of_real_fields_expand_or_fail_in_one_line(
        text in sweep_file(), max_instances in 1usize..100
    ) {
        exercise(&text, max_instances);
    }

    #[test]
    fn shard_syntax_parses_or_explains(text in "\\PC{0,12}|[0-9]{1,20}/[0-9]{1,20}") {
        match SweepShard::parse(&text) {
            Ok(s) => prop_assert!(s.k < s.n),
            Err(e) => one_line(&e),
        }
    }
}
