//! A run directory and every file in it, with their writers and readers:
//!
//! | file | written | holds |
//! |---|---|---|
//! | `config.toml` | at the start (and by `--resume --steps`) | the full config |
//! | `checkpoint.safetensors` | every few steps, on Ctrl-C, at the end | the training state |
//! | `progress.json` | with each checkpoint of an unfinished run; removed at the end | the loss curve so far |
//! | `metrics.json` | at the end ([`Metrics`]), or the failure status of a failed run | |
//! | `figures/` | by `tmcc plot` | |
//!
//! Every file is written atomically by `tmcc_model::io::write_atomic`: to the hidden
//! temporary name `.NAME.tmp-PID` in the same directory, then renamed into place, so a
//! reader never sees half a file. Only a process killed in the middle of a write leaves
//! such a temporary file; [`RunDir::clean_temp_files`] removes them. An existing directory
//! is only replaced with `force`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::eval::InstanceEval;
use tmcc_model::io::{is_temp_name, write_atomic};
use tmcc_model::train::LogPoint;
use tmcc_model::Config;

use crate::Error;

pub const CONFIG: &str = "config.toml";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The loss curve of an unfinished run.
pub const PROGRESS: &str = "progress.json";
pub const METRICS: &str = "metrics.json";
/// The folder of the figures `tmcc plot` draws by default.
pub const FIGURES: &str = "figures";

/// The metrics file of a run (`metrics.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub steps_done: u64,
    pub loss_curve: Vec<LogPoint>,
    /// Last logged training-batch loss of every instance.
    pub final_train_loss: Vec<f64>,
    pub eval: Vec<InstanceEval>,
    pub seconds: f64,
    /// Where it trained ([`tmcc_kernels::Device::describe`]; empty in files written before
    /// it was kept).
    #[serde(default)]
    pub device: String,
    /// Why `--device auto` chose the CPU (`null` when it did not fall back).
    #[serde(default)]
    pub device_note: Option<String>,
    /// Every instance's trained `σ` when the model learns it (`learn_sigma`), else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned_sigma: Vec<f64>,
}

/// The progress file of an unfinished run (`progress.json`).
#[derive(Serialize, Deserialize)]
struct ProgressFile {
    steps_done: u64,
    loss_curve: Vec<LogPoint>,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    tmcc_model::Error::Io {
        path: path.display().to_string(),
        source,
    }
    .into()
}

/// `path` itself, or `path/checkpoint.safetensors` when `path` is a directory.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT)
    } else {
        path.to_path_buf()
    }
}

/// Loads a checkpoint file or the checkpoint of a run directory.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint<f32>, Error> {
    Ok(Checkpoint::<f32>::load(&checkpoint_path(path))?)
}

/// An output directory owned by one run.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `path`; if it exists, fails unless `force` (then it is emptied first).
    pub fn create(path: &Path, force: bool) -> Result<Self, Error> {
        if path.exists() {
            if !force {
                return Err(io_err(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "output directory exists; pass --force to replace it",
                    ),
                ));
            }
            std::fs::remove_dir_all(path).map_err(|e| io_err(path, e))?;
        }
        std::fs::create_dir_all(path).map_err(|e| io_err(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// An existing run directory (resume, evaluation).
    pub fn open(path: &Path) -> Result<Self, Error> {
        if !path.join(CHECKPOINT).is_file() {
            return Err(io_err(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {CHECKPOINT} in this directory"),
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The directory of the checkpoint that `path` names (a run directory, or a checkpoint
    /// file: then its folder), as it is; nothing is checked.
    pub fn holding(path: &Path) -> Self {
        let file = checkpoint_path(path);
        Self {
            path: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_config(&self, cfg: &Config) -> Result<(), Error> {
        Ok(write_atomic(
            &self.file(CONFIG),
            cfg.to_toml_string().as_bytes(),
        )?)
    }

    pub fn write_checkpoint(&self, ck: &Checkpoint<f32>) -> Result<(), Error> {
        Ok(ck.save(&self.file(CHECKPOINT))?)
    }

    pub fn load_checkpoint(&self) -> Result<Checkpoint<f32>, Error> {
        Ok(Checkpoint::load(&self.file(CHECKPOINT))?)
    }

    /// Writes `value` as pretty JSON to the file `name` of this directory.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(value).expect("serializable");
        Ok(write_atomic(&self.file(name), text.as_bytes())?)
    }

    /// `progress.json`: the loss curve of the `steps_done` steps so far.
    pub fn write_progress(&self, steps_done: u64, log: &[LogPoint]) -> Result<(), Error> {
        self.write_json(
            PROGRESS,
            &ProgressFile {
                steps_done,
                loss_curve: log.to_vec(),
            },
        )
    }

    /// Removes `progress.json` (the run has finished); a missing file is no error.
    pub fn remove_progress(&self) {
        let _ = std::fs::remove_file(self.file(PROGRESS));
    }

    pub fn write_metrics(&self, metrics: &Metrics) -> Result<(), Error> {
        self.write_json(METRICS, metrics)
    }

    /// The status of a failed run in place of its metrics: the error and the step of the
    /// checkpoint the directory keeps.
    pub fn write_failure(&self, error: &str, last_checkpoint_step: u64) -> Result<(), Error> {
        let status = serde_json::json!({
            "status": "failed",
            "error": error,
            "last_checkpoint_step": last_checkpoint_step,
        });
        self.write_json(METRICS, &status)
    }

    fn read_progress(&self) -> Option<Vec<LogPoint>> {
        let text = std::fs::read_to_string(self.file(PROGRESS)).ok()?;
        serde_json::from_str::<ProgressFile>(&text)
            .ok()
            .map(|p| p.loss_curve)
    }

    fn read_metrics(&self) -> Option<Metrics> {
        let text = std::fs::read_to_string(self.file(METRICS)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The logged points of the earlier sessions of this run, up to step `upto` (what a
    /// resume continues): from `progress.json`, else from `metrics.json` (a finished run
    /// being extended), else none.
    pub fn earlier_log(&self, upto: u64) -> Vec<LogPoint> {
        let log = self
            .read_progress()
            .or_else(|| self.read_metrics().map(|m| m.loss_curve))
            .unwrap_or_default();
        log.into_iter().filter(|p| p.step <= upto).collect()
    }

    /// The loss curve to show: from `metrics.json`, else `progress.json` (an unfinished
    /// run); an error when neither holds one.
    pub fn loss_curve(&self) -> Result<Vec<LogPoint>, Error> {
        self.read_metrics()
            .map(|m| m.loss_curve)
            .or_else(|| self.read_progress())
            .ok_or_else(|| {
                Error::Other(format!(
                    "no loss curve in {}: neither {METRICS} nor {PROGRESS} holds one",
                    self.path.display()
                ))
            })
    }

    /// Removes the temporary files a killed writer left here; returns how many.
    pub fn clean_temp_files(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| is_temp_name(&e.file_name().to_string_lossy()))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }
}
