//! Sweeps: a grid over config fields, expanded into runs, trained as instances side by side
//! where shapes allow, with results in one tidy table (one row per run).
//!
//! A sweep file is a TOML document: any config fields (the base, over the defaults) plus a
//! `[grid]` table of `field = [values]`. Each run is one model (one instance), so the base
//! must keep `instances = 1` and empty per-instance lists, and those four fields cannot be
//! swept; sweep `seed` for replicates.
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
//! come from its own seed), so a sharded sweep gives the same rows as an unsharded one.
//!
//! **Shards.** Shard `K` of `N` (0-based, `0 ≤ K < N`) holds the runs `i` with
//! `⌊K·n/N⌋ ≤ i < ⌊(K+1)·n/N⌋` of the `n` expanded runs ([`SLICING`]).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tmcc_model::eval::InstanceEval;
use tmcc_model::io::write_atomic;
use tmcc_model::{Config, ConfigError};

use crate::Error;

/// `format` of `results.json`.
pub const FORMAT: &str = "tmcc-sweep/1";
/// The results files of a sweep directory.
pub const RESULTS_JSON: &str = "results.json";
pub const RESULTS_CSV: &str = "results.csv";
/// The sweep file, copied byte for byte into the sweep directory.
pub const SWEEP_FILE: &str = "sweep.toml";
/// Group run directories live under this folder of the sweep directory.
pub const RUNS_DIR: &str = "runs";
/// How runs are split into shards, as stated in `results.json`.
pub const SLICING: &str = "contiguous, 0-based: shard K of N holds runs i with \
floor(K*n/N) <= i < floor((K+1)*n/N) of the n expanded runs";
/// Most runs one sweep may expand to.
pub const MAX_RUNS: usize = 1_000_000;

/// The fields that may differ between the instances of one group, in axis order.
pub const INSTANCE_AXES: [&str; 3] = ["p", "sigma", "seed"];
/// Fields a sweep fixes: every run is one instance.
pub const NOT_SWEPT: [&str; 4] = [
    "instances",
    "seed_per_instance",
    "p_per_instance",
    "sigma_per_instance",
];
/// Metric columns of a row, after the config columns.
pub const METRIC_COLUMNS: [&str; 7] = [
    "final_train_loss",
    "eval_loss",
    "eval_loss_se",
    "naive_loss",
    "loss_over_naive",
    "loss_over_naive_se",
    "steps_done",
];
/// Where a row was computed: `shard` (`K/N`), `dir` (the group's run directory) and
/// `instance` (its index in that run's checkpoint).
pub const PLACE_COLUMNS: [&str; 3] = ["shard", "dir", "instance"];

/// One swept field and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub field: String,
    pub values: Vec<Value>,
}

/// A parsed sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub base: Config,
    /// In run order (see the module docs).
    pub axes: Vec<Axis>,
    toml_axes: Vec<Vec<toml::Value>>,
}

fn syntax_error(text: &str, e: toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
        .unwrap_or(0);
    ConfigError::new(
        "<toml>",
        format!("syntax error at line {line}: {}", e.message().trim()),
    )
}

fn axis_rank(field: &str) -> (usize, String) {
    match INSTANCE_AXES.iter().position(|f| *f == field) {
        Some(i) => (1 + i, String::new()),
        None => (0, field.to_string()),
    }
}

/// FNV-1a, 64 bit: a stable fingerprint (not a cryptographic hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Sweep {
    /// Parses a sweep file. Every error names the field it is about, on one line.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(text, e))?;
        let grid = match table.remove("grid") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(ConfigError::new(
                    "grid",
                    "must be a table of `field = [values]`",
                ))
            }
        };
        let mut base = Config::default();
        for (k, v) in table {
            base.set(&k, v)?;
        }
        if base.instances != 1 {
            return Err(ConfigError::new(
                "instances",
                format!(
                    "must be 1 in a sweep file (each run is one model; sweep `seed` for replicates), got {}",
                    base.instances
                ),
            ));
        }
        for f in &NOT_SWEPT[1..] {
            let empty = match *f {
                "seed_per_instance" => base.seed_per_instance.is_empty(),
                "p_per_instance" => base.p_per_instance.is_empty(),
                _ => base.sigma_per_instance.is_empty(),
            };
            if !empty {
                return Err(ConfigError::new(
                    f,
                    "must be empty in a sweep file (each run is one model; sweep `seed`, `p` or `sigma`)",
                ));
            }
        }
        let known = Config::field_names();
        let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
        for (field, values) in grid {
            if NOT_SWEPT.contains(&field.as_str()) {
                return Err(ConfigError::new(
                    &field,
                    "cannot be swept (each run is one model; sweep `seed`, `p` or `sigma`)",
                ));
            }
            if !known.contains(&field) {
                return Err(ConfigError::new(
                    &field,
                    format!(
                        "unknown field in [grid]; known fields: {}",
                        known.join(", ")
                    ),
                ));
            }
            let values = match values {
                toml::Value::Array(a) if !a.is_empty() => a,
                _ => {
                    return Err(ConfigError::new(
                        &field,
                        "[grid] values must be a non-empty array, e.g. `p = [0.01, 0.03]`",
                    ))
                }
            };
            for (i, v) in values.iter().enumerate() {
                if values[..i].contains(v) {
                    return Err(ConfigError::new(
                        &field,
                        format!("[grid] lists the value {v} twice"),
                    ));
                }
                base.clone().set(&field, v.clone())?;
            }
            axes.push((field, values));
        }
        axes.sort_by_key(|(f, _)| axis_rank(f));
        axes.iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()))
            .filter(|&n| n <= MAX_RUNS)
            .ok_or_else(|| {
                ConfigError::new("grid", format!("expands to more than {MAX_RUNS} runs"))
            })?;
        let json_axes = axes
            .iter()
            .map(|(field, values)| Axis {
                field: field.clone(),
                values: values
                    .iter()
                    .map(|v| serde_json::to_value(v).expect("TOML values are JSON values"))
                    .collect(),
            })
            .collect();
        Ok(Self {
            base,
            axes: json_axes,
            toml_axes: axes.into_iter().map(|(_, v)| v).collect(),
        })
    }

    /// Number of runs the grid expands to.
    pub fn n_runs(&self) -> usize {
        self.toml_axes.iter().map(Vec::len).product()
    }

    /// A fingerprint of what the sweep computes: the base config (with defaults filled in)
    /// and the axes in run order. Comments and layout of the file do not change it.
    pub fn hash(&self) -> String {
        let mut canon = self.base.to_toml_string();
        for a in &self.axes {
            canon += &format!("\n{} = {}", a.field, Value::Array(a.values.clone()));
        }
        format!("fnv1a64:{:016x}", fnv1a(canon.as_bytes()))
    }

    /// The config of run `index`, validated; an error names the field and the run.
    pub fn run(&self, index: usize) -> Result<Config, ConfigError> {
        let mut cfg = self.base.clone();
        let mut rest = index;
        let mut desc = Vec::new();
        for (axis, values) in self.axes.iter().zip(&self.toml_axes).rev() {
            let v = &values[rest % values.len()];
            rest /= values.len();
            cfg.set(&axis.field, v.clone())?;
            desc.push(format!("{} = {v}", axis.field));
        }
        desc.reverse();
        cfg.validate().map_err(|e| {
            ConfigError::new(
                &e.field,
                format!("{} (run {index}: {})", e.message, desc.join(", ")),
            )
        })?;
        Ok(cfg)
    }

    /// Every run's config, validated (the first bad run is reported).
    pub fn expand(&self) -> Result<Vec<Config>, ConfigError> {
        (0..self.n_runs()).map(|i| self.run(i)).collect()
    }
}

/// Shard `k` of `n` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl Shard {
    /// The whole sweep.
    pub const WHOLE: Shard = Shard { k: 0, n: 1 };

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

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Runs trained side by side as the instances of one multi-instance run.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Run indices, in instance order.
    pub runs: Vec<usize>,
    /// The multi-instance config (`instances = runs.len()`).
    pub cfg: Config,
}

impl Group {
    /// The group's run directory, relative to the sweep directory.
    pub fn dir_name(&self) -> String {
        let first = self.runs.first().copied().unwrap_or(0);
        let last = self.runs.last().copied().unwrap_or(0);
        format!("{RUNS_DIR}/{first:06}-{last:06}")
    }
}

/// What must agree between the instances of one group: the config without seed, p, sigma.
fn group_key(cfg: &Config) -> String {
    Config {
        seed: 0,
        p: 1.0,
        sigma: 0.0,
        ..cfg.clone()
    }
    .to_toml_string()
}

/// Most instances a config's shape allows in one run (sparse indices are `u32`).
fn instance_cap(cfg: &Config) -> usize {
    let cells = cfg.batch_size.max(cfg.eval_batch) as u128 * cfg.n_feat as u128;
    ((u32::MAX as u128 - 1) / cells.max(1)).clamp(1, usize::MAX as u128) as usize
}

/// Groups consecutive runs that may train together, at most `max_instances` per group.
pub fn groups(runs: &[(usize, Config)], max_instances: usize) -> Vec<Group> {
    let mut out: Vec<(String, Vec<usize>, Vec<&Config>)> = Vec::new();
    for (index, cfg) in runs {
        let key = group_key(cfg);
        let cap = max_instances.max(1).min(instance_cap(cfg));
        match out.last_mut() {
            Some((k, idx, cfgs)) if *k == key && idx.len() < cap => {
                idx.push(*index);
                cfgs.push(cfg);
            }
            _ => out.push((key, vec![*index], vec![cfg])),
        }
    }
    out.into_iter()
        .map(|(_, runs, cfgs)| {
            let first = cfgs[0];
            let cfg = Config {
                instances: cfgs.len(),
                seed_per_instance: cfgs.iter().map(|c| c.seed).collect(),
                p_per_instance: cfgs.iter().map(|c| c.p).collect(),
                sigma_per_instance: cfgs.iter().map(|c| c.sigma).collect(),
                ..first.clone()
            };
            Group { runs, cfg }
        })
        .collect()
}

/// The config columns of the table: every config field except the per-instance ones.
pub fn config_columns() -> Vec<String> {
    Config::field_names()
        .into_iter()
        .filter(|f| !NOT_SWEPT.contains(&f.as_str()))
        .collect()
}

/// All columns of the table, in order: `run`, the swept fields (in run order), the other
/// config fields, the metrics, the place.
pub fn columns(axes: &[Axis]) -> Vec<String> {
    let mut c = vec!["run".to_string()];
    c.extend(axes.iter().map(|a| a.field.clone()));
    c.extend(
        config_columns()
            .into_iter()
            .filter(|f| !axes.iter().any(|a| a.field == *f)),
    );
    c.extend(METRIC_COLUMNS.iter().map(|s| s.to_string()));
    c.extend(PLACE_COLUMNS.iter().map(|s| s.to_string()));
    c
}

/// Where a row came from.
pub struct Place<'a> {
    pub shard: Shard,
    pub dir: &'a str,
    pub instance: usize,
}

/// One row: run `run` with config `cfg` (one instance), its evaluation and last logged
/// training loss. `res_factor` is the value in force (`r`), never empty.
pub fn row(
    run: usize,
    cfg: &Config,
    eval: &InstanceEval,
    final_train_loss: f64,
    steps_done: u64,
    place: &Place,
) -> Map<String, Value> {
    let Value::Object(fields) = serde_json::to_value(cfg).expect("a Config serializes") else {
        unreachable!("a Config serializes to an object")
    };
    let mut r = Map::new();
    r.insert("run".into(), run.into());
    for c in config_columns() {
        let v = if c == "res_factor" {
            cfg.res_factor().into()
        } else {
            fields.get(&c).cloned().unwrap_or(Value::Null)
        };
        r.insert(c, v);
    }
    let num = |v: f64| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number);
    r.insert("final_train_loss".into(), num(final_train_loss));
    r.insert("eval_loss".into(), num(eval.loss));
    r.insert("eval_loss_se".into(), num(eval.loss_se));
    r.insert("naive_loss".into(), num(eval.naive));
    r.insert("loss_over_naive".into(), num(eval.ratio));
    r.insert("loss_over_naive_se".into(), num(eval.ratio_se));
    r.insert("steps_done".into(), steps_done.into());
    r.insert("shard".into(), place.shard.to_string().into());
    r.insert("dir".into(), place.dir.into());
    r.insert("instance".into(), place.instance.into());
    r
}

/// A trained group, as recorded in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub dir: String,
    pub runs: Vec<usize>,
    pub seconds: f64,
}

/// The contents of `results.json` (and, as a table, `results.csv`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub format: String,
    pub sweep_hash: String,
    pub axes: Vec<Axis>,
    pub runs_total: usize,
    /// The shard these rows are; `None` for a merge of shards.
    pub shard: Option<Shard>,
    /// For a merge: how many shards were joined.
    pub merged_shards: Option<usize>,
    pub slicing: String,
    /// The run indices this file covers.
    pub runs: Range<usize>,
    /// Every run of `runs` has its row (false while running or after an interruption).
    pub complete: bool,
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
    pub groups: Vec<GroupRecord>,
}

impl Results {
    /// Empty results of `shard` of `sweep`.
    pub fn new(sweep: &Sweep, shard: Shard) -> Self {
        let runs = shard.range(sweep.n_runs());
        Self {
            format: FORMAT.into(),
            sweep_hash: sweep.hash(),
            axes: sweep.axes.clone(),
            runs_total: sweep.n_runs(),
            shard: Some(shard),
            merged_shards: None,
            slicing: SLICING.into(),
            complete: runs.is_empty(),
            runs,
            columns: columns(&sweep.axes),
            rows: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// The table as CSV (header + one line per row; strings quoted when needed, lists as
    /// JSON arrays, missing values empty).
    pub fn to_csv(&self) -> String {
        let mut s = self
            .columns
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|c| match r.get(c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(t)) => csv_cell(t),
                    Some(v) => csv_cell(&v.to_string()),
                })
                .collect();
            s += &cells.join(",");
            s.push('\n');
        }
        s
    }

    /// Writes `results.json` and `results.csv` into `dir`, each atomically.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let json = serde_json::to_string_pretty(self).expect("results serialize");
        write_atomic(&dir.join(RESULTS_JSON), json.as_bytes())?;
        write_atomic(&dir.join(RESULTS_CSV), self.to_csv().as_bytes())?;
        Ok(())
    }

    /// Reads `results.json` of a sweep directory.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(RESULTS_JSON);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        let r: Results = serde_json::from_str(&text).map_err(|e| {
            Error::Other(format!("{}: not a tmcc sweep result ({e})", path.display()))
        })?;
        if r.format != FORMAT {
            return Err(Error::Other(format!(
                "{}: format `{}`, expected `{FORMAT}`",
                path.display(),
                r.format
            )));
        }
        Ok(r)
    }

    /// The swept field names, in run order.
    pub fn axis_fields(&self) -> Vec<&str> {
        self.axes.iter().map(|a| a.field.as_str()).collect()
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Joins the results of every shard of one sweep into one table. Refuses (with a one-line
/// message) shards of different sweeps, incomplete shards, duplicate or missing shards,
/// and rows that do not cover each run exactly once. Each row's `dir` is prefixed with its
/// shard's directory, so it still points at the group's run directory.
pub fn merge(parts: &[(PathBuf, Results)]) -> Result<Results, Error> {
    let fail = |m: String| Err(Error::Other(m));
    let Some((first_dir, first)) = parts.first() else {
        return fail("merge needs at least one shard directory".into());
    };
    let n = match first.shard {
        Some(s) => s.n,
        None => return fail(format!("{} is a merge, not a shard", first_dir.display())),
    };
    let mut seen: Vec<Option<&Path>> = vec![None; n];
    for (dir, r) in parts {
        let shard = match r.shard {
            Some(s) => s,
            None => return fail(format!("{} is a merge, not a shard", dir.display())),
        };
        if r.sweep_hash != first.sweep_hash
            || r.axes != first.axes
            || r.runs_total != first.runs_total
        {
            return fail(format!(
                "{} is from a different sweep than {} (sweep hash {} vs {})",
                dir.display(),
                first_dir.display(),
                r.sweep_hash,
                first.sweep_hash
            ));
        }
        if shard.n != n {
            return fail(format!(
                "{} is shard {shard} but {} is shard {} (different shard counts)",
                dir.display(),
                first_dir.display(),
                first.shard.expect("checked")
            ));
        }
        if !r.complete {
            return fail(format!(
                "{} (shard {shard}) is incomplete: {} of {} runs done; rerun it",
                dir.display(),
                r.rows.len(),
                r.runs.len()
            ));
        }
        if let Some(other) = seen[shard.k] {
            return fail(format!(
                "shard {shard} given twice ({} and {})",
                other.display(),
                dir.display()
            ));
        }
        seen[shard.k] = Some(dir);
    }
    let missing: Vec<String> = (0..n)
        .filter(|&k| seen[k].is_none())
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return fail(format!("missing shard(s) {}", missing.join(", ")));
    }
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    let mut groups = Vec::new();
    for (dir, r) in parts {
        for row in &r.rows {
            let mut row = row.clone();
            if let Some(Value::String(d)) = row.get("dir") {
                row.insert("dir".into(), dir.join(d).display().to_string().into());
            }
            rows.push(row);
        }
        groups.extend(r.groups.iter().map(|g| GroupRecord {
            dir: dir.join(&g.dir).display().to_string(),
            ..g.clone()
        }));
    }
    let index = |r: &Map<String, Value>| r.get("run").and_then(Value::as_u64).map(|v| v as usize);
    rows.sort_by_key(|r| index(r));
    let got: Vec<Option<usize>> = rows.iter().map(index).collect();
    let want: Vec<Option<usize>> = (0..first.runs_total).map(Some).collect();
    if got != want {
        let have: BTreeSet<usize> = got.iter().flatten().copied().collect();
        let lacking = (0..first.runs_total).find(|i| !have.contains(i));
        return fail(match lacking {
            Some(i) => format!("the shards lack run {i} of {}", first.runs_total),
            None => format!(
                "the shards hold {} rows for {} runs (duplicates)",
                rows.len(),
                first.runs_total
            ),
        });
    }
    Ok(Results {
        shard: None,
        merged_shards: Some(n),
        runs: 0..first.runs_total,
        complete: true,
        rows,
        groups,
        ..first.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        n_feat = 8
        n_hidden = 4
        [grid]
        seed = [0, 1]
        variant = ["mlp", "emb_res"]
        p = [0.1, 0.2]
    "#;

    #[test]
    fn expands_in_documented_order() {
        let s = Sweep::from_toml_str(FILE).unwrap();
        let fields: Vec<&str> = s.axes.iter().map(|a| a.field.as_str()).collect();
        assert_eq!(fields, ["variant", "p", "seed"]);
        let runs = s.expand().unwrap();
        assert_eq!(runs.len(), 8);
        assert_eq!(
            (runs[1].seed, runs[1].p, runs[1].variant.name()),
            (1, 0.1, "mlp")
        );
        assert_eq!((runs[2].seed, runs[2].p), (0, 0.2));
        assert_eq!(runs[4].variant.name(), "emb_res");
        let g = groups(&runs.into_iter().enumerate().collect::<Vec<_>>(), 64);
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].runs, vec![4, 5, 6, 7]);
        assert_eq!(g[1].cfg.p_per_instance, vec![0.1, 0.1, 0.2, 0.2]);
        g[1].cfg.validate().unwrap();
        let g3 = groups(
            &s.expand()
                .unwrap()
                .into_iter()
                .enumerate()
                .collect::<Vec<_>>(),
            3,
        );
        assert_eq!(
            g3.iter().map(|g| g.runs.len()).collect::<Vec<_>>(),
            [3, 1, 3, 1]
        );
    }

    #[test]
    fn hash_ignores_layout_and_comments() {
        let a = Sweep::from_toml_str(FILE).unwrap();
        let b = Sweep::from_toml_str(&format!("# note\n{FILE}")).unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = Sweep::from_toml_str(&FILE.replace("0.2]", "0.3]")).unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn shards_partition_the_runs() {
        for total in [0, 1, 5, 17] {
            for n in 1..7 {
                let mut next = 0;
                for k in 0..n {
                    let r = Shard { k, n }.range(total);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
        assert!(Shard::parse("2/2").is_err() && Shard::parse("x").is_err());
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { k: 1, n: 3 });
    }

    #[test]
    fn errors_name_the_field() {
        for (text, field) in [
            ("[grid]\np = [0.1, 2.0]", "p"),
            ("[grid]\nbogus = [1]", "bogus"),
            ("[grid]\ninstances = [1, 2]", "instances"),
            ("instances = 2", "instances"),
            ("[grid]\np = 0.1", "p"),
            ("[grid]\nvariant = [\"emb_res\", \"nope\"]", "variant"),
            ("grid = 3", "grid"),
            ("p = [", "<toml>"),
        ] {
            let e = Sweep::from_toml_str(text)
                .and_then(|s| s.expand().map(|_| ()))
                .unwrap_err();
            assert_eq!(e.field, field, "{text}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_cell("plain"), "plain");
    }
}
