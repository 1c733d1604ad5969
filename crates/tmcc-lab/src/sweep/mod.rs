//! Sweeps: a grid over config fields, expanded into runs, trained as instances side by side
//! where shapes allow, with results in one tidy table (one row per run).
//!
//! A sweep file is a TOML document: any config fields (the base, over the defaults) plus a
//! `[grid]` table of `field = [values]`; `preset = "NAME"` starts the base from a named
//! preset (`tmcc_model::presets`) instead of the defaults. Each run is one model (one instance), so the base
//! must keep `instances = 1` and empty per-instance lists, and those four fields cannot be
//! swept; sweep `seed` for replicates ([`spec`]).
//!
//! **Run order.** The runs are the Cartesian product of the axes, numbered from 0, with the
//! last axis varying fastest. Axes are ordered: every axis other than `p`, `sigma`, `seed`
//! in alphabetical order, then `p`, `sigma`, `seed` (whichever are swept). The order does
//! not depend on how the file lists them.
//!
//! **Groups.** Runs whose configs agree in every field but `seed`, `p` and `sigma` train
//! together as the instances of one multi-instance run (`seed_per_instance`,
//! `p_per_instance`, `sigma_per_instance`), at most `max_instances` at a time. An instance's
//! numbers do not depend on the group it trains in (its init, data and evaluation streams
//! come from its own seed), so a sharded sweep gives the same rows as an unsharded one
//! ([`groups`]).
//!
//! **Shards.** Shard `K` of `N` (0-based, `0 ≤ K < N`) holds the runs `i` with
//! `⌊K·n/N⌋ ≤ i < ⌊(K+1)·n/N⌋` of the `n` expanded runs ([`SLICING`], [`SweepShard`]).
//!
//! **Results.** A sweep directory holds `sweep.toml` (the file, byte for byte),
//! `results.json` / `results.csv` (one row per run, rewritten after every group) and the
//! groups' run directories under `runs/` ([`results`]); [`run`] trains a shard into it.

use std::ops::Range;

use serde::{Deserialize, Serialize};

pub mod groups;
pub mod results;
pub mod run;
pub mod spec;

pub use groups::{groups, Group};
pub use results::{
    columns, config_columns, merge, row, GroupRecord, Place, Results, SweepDir, FORMAT,
    METRIC_COLUMNS, PLACE_COLUMNS, RESULTS_CSV, RESULTS_JSON, RUNS_DIR, SWEEP_FILE,
};
pub use run::{ShardEnd, ShardPlan, ShardRun};
pub use spec::{Axis, SweepSpec, INSTANCE_AXES, MAX_RUNS, NOT_SWEPT};

/// How runs are split into shards, as stated in `results.json`.
pub const SLICING: &str = "contiguous, 0-based: shard K of N holds runs i with \
floor(K*n/N) <= i < floor((K+1)*n/N) of the n expanded runs";

/// Shard `k` of `n` (0-based) of a sweep's runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepShard {
    pub k: usize,
    pub n: usize,
}

impl SweepShard {
    /// The whole sweep.
    pub const WHOLE: SweepShard = SweepShard { k: 0, n: 1 };

    /// Parses `K/N` with `0 ≤ K < N`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("expected K/N with 0 <= K < N (0-based), got `{s}`");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(Self { k, n })
    }

    /// The runs of this shard out of `total` ([`SLICING`]).
    pub fn range(&self, total: usize) -> Range<usize> {
        let at = |k: usize| (total as u128 * k as u128 / self.n as u128) as usize;
        at(self.k)..at(self.k + 1)
    }
}

impl std::fmt::Display for SweepShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_runs() {
        for total in [0, 1, 5, 17] {
            for n in 1..7 {
                let mut next = 0;
                for k in 0..n {
                    let r = SweepShard { k, n }.range(total);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
        assert!(SweepShard::parse("2/2").is_err() && SweepShard::parse("x").is_err());
        assert_eq!(SweepShard::parse("1/3").unwrap(), SweepShard { k: 1, n: 3 });
    }
}
