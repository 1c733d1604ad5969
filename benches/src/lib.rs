//! All of tmcc's benchmarking, in one crate (`benches/`):
//!
//! * `tmcc-bench` (`src/bin/tmcc-bench.rs`, run by `cargo xtask bench`): the CPU training
//!   step against PyTorch, the matrix-multiply rate it is held against, instances side by
//!   side and peak memory, as the report `docs/performance.md`;
//! * `gpu-bench` (`src/bin/gpu-bench.rs`, run by `scripts/gpu-check.sh`): training
//!   throughput of many instances on a device (`--features cuda`);
//! * the criterion benchmarks `benches/kernels.rs` and `benches/step.rs`
//!   (`cargo bench -p tmcc-benches`);
//! * `python/torch_step.py`: the PyTorch loop that `tmcc-bench` times as a subprocess.
//!
//! The modules below are the parts the binaries share. This library serves only this
//! crate's own binaries and benchmarks, so its errors are `anyhow` like theirs.

use std::path::PathBuf;

pub mod cost;
pub mod machine;
pub mod memory;
pub mod report;
pub mod setting;
pub mod stats;
pub mod timing;
pub mod torch;

/// The workspace root: the parent of this crate's directory (`benches/`), wherever the
/// binary is run from.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the benches crate lives one level below the workspace root")
        .to_path_buf()
}
