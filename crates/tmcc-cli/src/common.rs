//! Helpers shared by the subcommands: finding and loading checkpoints, the Ctrl-C flag,
//! and removing the temporary files a killed writer may leave behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use tmcc_lab::rundir::CHECKPOINT;
use tmcc_model::checkpoint::Checkpoint;

/// `path` itself, or `path/checkpoint.safetensors` when `path` is a directory.
pub fn checkpoint_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT)
    } else {
        path.to_path_buf()
    }
}

/// Loads a checkpoint file or the checkpoint of a run directory.
pub fn load_checkpoint(path: &Path) -> anyhow::Result<Checkpoint<f32>> {
    Ok(Checkpoint::<f32>::load(&checkpoint_path(path))?)
}

/// A flag set by Ctrl-C (SIGINT); the handler is installed once per process.
pub fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(f) = FLAG.get() {
        return Ok(f.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, std::sync::atomic::Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let _ = FLAG.set(flag.clone());
    Ok(flag)
}

/// Writes one line to stdout; exits quietly (status 0) if the reader has gone away, and
/// with a one-line error if stdout cannot be written otherwise.
pub fn out_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

/// Whether `name` is a temporary file of `tmcc_model::io::write_atomic`
/// (`.NAME.tmp-PID`): only a process killed in the middle of a write leaves one.
pub fn is_temp_file(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files a killed writer left in `dir`; returns how many.
pub fn clean_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| is_temp_file(&e.file_name().to_string_lossy()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_write_atomic_temp_names() {
        assert!(is_temp_file(".checkpoint.safetensors.tmp-1234"));
        assert!(!is_temp_file("checkpoint.safetensors"));
        assert!(!is_temp_file(".checkpoint.safetensors.tmp-"));
        assert!(!is_temp_file(".hidden"));
    }
}
