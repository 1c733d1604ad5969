//! Crash-safe output: every file is written to a temporary name in its directory
//! (`.NAME.tmp-PID`), flushed, and renamed into place, so a reader never sees a
//! half-written file. Only a process killed in the middle of a write leaves a temporary
//! file behind ([`is_temp_name`] recognises one).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The temporary name this process writes `path` under: `.NAME.tmp-PID` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether `name` is a temporary file name of [`write_atomic`] (`.NAME.tmp-PID`).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `bytes` to `path` atomically (temporary file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_its_own_temp_names() {
        let tmp = temp_path(Path::new("run/checkpoint.safetensors"));
        let name = tmp.file_name().unwrap().to_string_lossy();
        assert!(is_temp_name(&name), "{name}");
        assert!(is_temp_name(".checkpoint.safetensors.tmp-1234"));
        assert!(!is_temp_name("checkpoint.safetensors"));
        assert!(!is_temp_name(".checkpoint.safetensors.tmp-"));
        assert!(!is_temp_name(".hidden"));
    }
}
