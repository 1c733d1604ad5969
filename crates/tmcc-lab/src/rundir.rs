//! A run directory: `config.toml`, `checkpoint.safetensors`, `metrics.json`. Every file is
//! written atomically (temporary name + rename); an existing directory is only replaced
//! with `force`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tmcc_model::checkpoint::Checkpoint;
use tmcc_model::io::write_atomic;
use tmcc_model::{Config, Error};

pub const CONFIG: &str = "config.toml";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const METRICS: &str = "metrics.json";

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
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
                return Err(Error::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "output directory exists; pass --force to replace it",
                    ),
                });
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
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no {CHECKPOINT} in this directory"),
                ),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_config(&self, cfg: &Config) -> Result<(), Error> {
        write_atomic(&self.file(CONFIG), cfg.to_toml_string().as_bytes())
    }

    pub fn write_checkpoint(&self, ck: &Checkpoint<f32>) -> Result<(), Error> {
        ck.save(&self.file(CHECKPOINT))
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(value).expect("serializable");
        write_atomic(&self.file(name), text.as_bytes())
    }

    pub fn load_checkpoint(&self) -> Result<Checkpoint<f32>, Error> {
        Checkpoint::load(&self.file(CHECKPOINT))
    }
}
