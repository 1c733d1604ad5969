//! The results of a sweep: one tidy row per run (`run`, the swept fields, the other config
//! fields, the metrics, where it was computed), as `results.json` and `results.csv`; the
//! merge of the shards of one sweep; and the sweep directory that holds them.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tmcc_model::eval::InstanceEval;
use tmcc_model::io::write_atomic;
use tmcc_model::Config;

use super::groups::Group;
use super::spec::{Axis, SweepSpec, NOT_SWEPT};
use super::{SweepShard, SLICING};
use crate::rundir::RunDir;
use crate::{Error, WithContext};

/// `format` of `results.json`.
pub const FORMAT: &str = "tmcc-sweep/1";
/// The results files of a sweep directory.
pub const RESULTS_JSON: &str = "results.json";
pub const RESULTS_CSV: &str = "results.csv";
/// The sweep file, copied byte for byte into the sweep directory.
pub const SWEEP_FILE: &str = "sweep.toml";
/// Group run directories live under this folder of the sweep directory.
pub const RUNS_DIR: &str = "runs";
/// Metric columns of a row, after the config columns.
pub const METRIC_COLUMNS: [&str; 8] = [
    "final_train_loss",
    "eval_loss",
    "eval_loss_se",
    "naive_loss",
    "loss_over_naive",
    "loss_over_naive_se",
    "learned_sigma",
    "steps_done",
];
/// Where a row was computed: `shard` (`K/N`), `dir` (the group's run directory) and
/// `instance` (its index in that run's checkpoint).
pub const PLACE_COLUMNS: [&str; 3] = ["shard", "dir", "instance"];

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
    pub shard: SweepShard,
    pub dir: &'a str,
    pub instance: usize,
}

/// A run's outcome: its evaluation, last logged training loss, trained `σ` (`learn_sigma`
/// only) and steps.
pub struct RunMetrics<'a> {
    pub eval: &'a InstanceEval,
    pub final_train_loss: f64,
    pub learned_sigma: Option<f64>,
    pub steps_done: u64,
}

/// One row: run `run` with config `cfg` (one instance) and its metrics. `res_factor` is the
/// value in force (`r`), never empty; `learned_sigma` is empty unless `σ` was learned.
pub fn row(run: usize, cfg: &Config, metrics: &RunMetrics, place: &Place) -> Map<String, Value> {
    let RunMetrics {
        eval,
        final_train_loss,
        learned_sigma,
        steps_done,
    } = *metrics;
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
    r.insert(
        "learned_sigma".into(),
        learned_sigma.map_or(Value::Null, num),
    );
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
    pub shard: Option<SweepShard>,
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
    pub fn new(sweep: &SweepSpec, shard: SweepShard) -> Self {
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

/// A sweep directory: the sweep file `sweep.toml` (byte for byte), `results.json`,
/// `results.csv`, and the groups' run directories under `runs/`.
#[derive(Clone, Debug)]
pub struct SweepDir {
    pub path: PathBuf,
}

impl SweepDir {
    /// Whether `path` is a sweep directory (it holds `results.json`).
    pub fn is_sweep_dir(path: &Path) -> bool {
        path.is_dir() && path.join(RESULTS_JSON).is_file()
    }

    /// Creates `path` (an existing directory only with `force`, which empties it) holding
    /// the sweep file `sweep_file`, if given.
    pub fn create(path: &Path, force: bool, sweep_file: Option<&[u8]>) -> Result<Self, Error> {
        let dir = RunDir::create(path, force)?;
        if let Some(bytes) = sweep_file {
            write_atomic(&dir.file(SWEEP_FILE), bytes)?;
        }
        Ok(Self { path: dir.path })
    }

    /// `results.csv`, the table.
    pub fn results_csv(&self) -> PathBuf {
        self.path.join(RESULTS_CSV)
    }

    /// Writes `results.json` and `results.csv`.
    pub fn write_results(&self, results: &Results) -> Result<(), Error> {
        results.write(&self.path)
    }

    /// Creates the run directory of `group` (which must not exist yet).
    pub fn group_dir(&self, group: &Group) -> Result<RunDir, Error> {
        RunDir::create(&self.path.join(group.dir_name()), false)
    }

    /// Joins the shard directories `shards` of one sweep ([`merge`]) into a new sweep
    /// directory `out`, with the sweep file of the first shard. Refuses an `out` that holds
    /// a shard.
    pub fn merge(out: &Path, force: bool, shards: &[PathBuf]) -> Result<(Self, Results), Error> {
        let mut parts = Vec::new();
        for d in shards {
            let dir = d
                .canonicalize()
                .with_context(|| format!("shard directory {}", d.display()))?;
            let r = Results::read(&dir)?;
            parts.push((dir, r));
        }
        if let Ok(o) = out.canonicalize() {
            if let Some((d, _)) = parts.iter().find(|(d, _)| d.starts_with(&o)) {
                return Err(Error::Other(format!(
                    "output directory {} holds shard directory {}; choose another output",
                    out.display(),
                    d.display()
                )));
            }
        }
        let merged = merge(&parts)?;
        let sweep_file = parts
            .first()
            .and_then(|(d, _)| std::fs::read(d.join(SWEEP_FILE)).ok());
        let dir = Self::create(out, force, sweep_file.as_deref())?;
        dir.write_results(&merged)?;
        Ok((dir, merged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_cell("plain"), "plain");
    }
}
