//! The memory a run needs, estimated from its config alone (before anything is allocated),
//! and the check of that estimate against the memory available.
//!
//! Sizes are counted in elements and turned into bytes at the end: `f32` values and `u32`
//! indices are 4 bytes, the `f64` scratch of the initialisation 8. Shape letters: `K`
//! instances, `P` parameters per instance (the sum of the layout's tensor sizes, so a deeper
//! layout is counted by its own table), `F` features, `H` hidden, `D` input width, `B`
//! training batch, `Bₑ` evaluation rows; `E = D·F` (embedding variants) and `M = F·F`
//! (`mix`) are an instance's fixed tensors, `R = F·F` its residual table (residual variants),
//! `nnz = rows·F·p` the expected non-zeros of a sparse batch.
//!
//! A run has two phases that do not overlap; its peak is the larger:
//!
//! | phase | host | compute device (the host on the CPU) |
//! |---|---|---|
//! | training | 2 copies of the fixed tensors `K·(E + M)` (the trainer's and the final checkpoint's), the checkpoint's `K·3P` (weights, Adam `m`, `v`), 3 sparse batches of `K·B` rows (the per-instance parts, the current one and the one drawn ahead), the `f64` scratch of one instance | the instance states `K·(3P + E + R)`, the plan's tables, the workspaces (one per thread on the CPU, one of all `K` on a device: [`crate::fast::WorkspaceShape`]) |
//! | evaluation | the checkpoint `K·(E + M + 3P)`, one sparse batch of `K·Bₑ` rows | one state of all `K` with gradients `K·(4P + E + R)`, its residual tables staged once more `K·R`, the plan's tables, one workspace of `K·Bₑ` rows |
//!
//! The estimate is checked against the peak resident set a training run measures
//! (`tmcc-bench`, section "Peak memory"); [`MEASURED_FACTOR`] states the agreement.

use crate::config::{Config, Variant};
use crate::eval::eval_rows;
use crate::fast::WorkspaceShape;
use crate::layout::Layout;
use crate::ConfigError;

/// Measured peak ÷ estimate of a training run lies within `[1/MEASURED_FACTOR,
/// MEASURED_FACTOR]` (checked by `tmcc-bench`).
pub const MEASURED_FACTOR: f64 = 2.0;

/// Environment variable that caps the memory tmcc believes available (bytes, or with a
/// `K`, `M`, `G` suffix): to run a small machine's checks on a big one.
pub const LIMIT_ENV: &str = "TMCC_MEMORY_LIMIT";

/// Where the work of a run is placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The compute device is the host (the CPU backend).
    pub host_is_device: bool,
    /// States trained side by side with a workspace each (the CPU's rayon threads); 1 on
    /// a device, which keeps all instances in one state.
    pub parallel_workspaces: usize,
}

impl Placement {
    /// The CPU backend with `threads` rayon threads.
    pub fn cpu(threads: usize) -> Self {
        Self {
            host_is_device: true,
            parallel_workspaces: threads.max(1),
        }
    }

    /// The CPU backend with this process's rayon threads.
    pub fn cpu_here() -> Self {
        Self::cpu(rayon::current_num_threads())
    }

    /// A device backend (all instances in one state).
    pub fn device() -> Self {
        Self {
            host_is_device: false,
            parallel_workspaces: 1,
        }
    }
}

/// One named part of the estimate, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// What it holds, with its shape, e.g. `embeddings W_E K·D·F`.
    pub what: &'static str,
    pub bytes: f64,
    /// On the compute device (`false`: on the host).
    pub on_device: bool,
}

/// The estimate of one phase of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    pub parts: Vec<Part>,
}

impl Phase {
    /// Bytes on the host (`device: false`) or on the compute device (`device: true`).
    pub fn bytes(&self, device: bool) -> f64 {
        self.parts
            .iter()
            .filter(|p| p.on_device == device)
            .map(|p| p.bytes)
            .sum()
    }

    /// All bytes of the phase.
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// The largest part.
    pub fn largest(&self) -> &Part {
        self.parts
            .iter()
            .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
            .expect("a phase has parts")
    }
}

/// The memory of a run: its training and evaluation phases.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub training: Phase,
    pub evaluation: Phase,
    pub placement: Placement,
}

const F32: f64 = 4.0;
const F64: f64 = 8.0;

impl Estimate {
    /// The estimate of training `cfg` and evaluating it (its `eval_samples`).
    pub fn of_run(cfg: &Config, placement: Placement) -> Self {
        let k = cfg.instances as f64;
        let (f, d) = (cfg.n_feat as f64, cfg.d_in() as f64);
        let layout = Layout::of(cfg);
        let p: f64 = layout.slots.iter().map(|s| s.len as f64).sum();
        let embed = if cfg.variant.has_embedding() {
            d * f
        } else {
            0.0
        };
        let mixing = if cfg.variant == Variant::Mix {
            f * f
        } else {
            0.0
        };
        let resid = if cfg.variant.has_residual() {
            f * f
        } else {
            0.0
        };
        let data = crate::data::DataSpec::of(cfg);
        let p_max = (0..cfg.instances)
            .map(|i| data.marginal(cfg.instance_p(i), cfg.n_feat))
            .fold(data.marginal(cfg.p, cfg.n_feat), f64::max)
            .clamp(0.0, 1.0);
        // A sparse batch of `rows` rows per instance: offsets, then a column and a value
        // per non-zero.
        let batch = |rows: f64| F32 * (k * rows + 1.0 + 2.0 * k * rows * f * p_max);
        let shape = WorkspaceShape::of(cfg, layout.len);
        let dev = !placement.host_is_device;
        let part = |what, bytes, on_device| Part {
            what,
            bytes,
            on_device: on_device && dev,
        };
        let eyes: f64 = cfg.widths().iter().map(|&w| (w * w) as f64).sum();
        let plan = F32
            * (f + if shape.hidden_space { f * f } else { 0.0 }
                + if embed == 0.0 { eyes } else { 0.0 });
        let b = cfg.batch_size;
        let per_ws = cfg.instances.min(if dev { cfg.instances } else { 1 });
        let n_ws = if dev {
            1
        } else {
            placement.parallel_workspaces.min(cfg.instances)
        };
        let nnz = |rows: usize, n: usize| (rows as f64 * n as f64 * f * p_max).ceil() as usize;
        let ws_train = F32 * (n_ws * shape.elements(b, per_ws, true, nnz(b, per_ws))) as f64;
        let init_scratch = F64 * (p + embed.max(mixing) + resid + embed);
        let training = Phase {
            name: "training",
            parts: vec![
                part(
                    "fixed tensors W_E/M, 2 copies 2·K·(D·F + F·F)",
                    F32 * 2.0 * k * (embed + mixing),
                    false,
                ),
                part(
                    "final checkpoint (weights, Adam m, v) K·3P",
                    F32 * 3.0 * k * p,
                    false,
                ),
                part("sparse batches 3 × K·B rows", 3.0 * batch(b as f64), false),
                part(
                    "initialisation scratch (f64, one instance)",
                    init_scratch,
                    false,
                ),
                part(
                    "instance states K·(3P + D·F + F·F)",
                    F32 * k * (3.0 * p + embed + resid),
                    true,
                ),
                part("plan tables (importance, diag, I_H)", plan, true),
                part("training workspaces", ws_train, true),
            ],
        };
        let rows = eval_rows(cfg, cfg.eval_samples, cfg.instances);
        let ws_eval =
            F32 * shape.elements(rows, cfg.instances, false, nnz(rows, cfg.instances)) as f64;
        let evaluation = Phase {
            name: "evaluation",
            parts: vec![
                part(
                    "checkpoint K·(D·F + F·F + 3P)",
                    F32 * k * (embed + mixing + 3.0 * p),
                    false,
                ),
                part("evaluation batch K·Bₑ rows", batch(rows as f64), false),
                part(
                    "evaluation state K·(4P + D·F + F·F)",
                    F32 * k * (4.0 * p + embed + resid),
                    true,
                ),
                part("residual tables staged K·F·F", F32 * k * resid, false),
                part("plan tables (importance, diag, I_H)", plan, true),
                part("evaluation workspace K·Bₑ rows", ws_eval, true),
            ],
        };
        Self {
            training,
            evaluation,
            placement,
        }
    }

    /// The phase with the larger peak on the host (`device: false`) or the device.
    pub fn peak(&self, device: bool) -> (&Phase, f64) {
        let (t, e) = (self.training.bytes(device), self.evaluation.bytes(device));
        if t >= e {
            (&self.training, t)
        } else {
            (&self.evaluation, e)
        }
    }
}

/// The config fields that set the sizes of a run, and how to double each.
const SIZE_FIELDS: [&str; 6] = [
    "instances",
    "n_feat",
    "n_hidden",
    "d_emb",
    "batch_size",
    "eval_batch",
];

fn scaled(cfg: &Config, field: &str, by: usize) -> Config {
    let mut c = cfg.clone();
    let v = match field {
        "instances" => &mut c.instances,
        "n_feat" => &mut c.n_feat,
        "n_hidden" => &mut c.n_hidden,
        "d_emb" => &mut c.d_emb,
        "batch_size" => &mut c.batch_size,
        _ => &mut c.eval_batch,
    };
    *v = v.saturating_mul(by);
    if field == "instances" {
        // per-instance lists keep their meaning: repeat them
        for list in [&mut c.p_per_instance, &mut c.sigma_per_instance] {
            let copy = list.clone();
            for _ in 1..by {
                list.extend_from_slice(&copy);
            }
        }
        c.seed_per_instance.clear();
    }
    c
}

/// The field that drives the size of `cfg`'s run: of the size fields, the one whose
/// change from its default contributes most to the estimate, to first order — its
/// elasticity `log₂(estimate(2·v) / estimate(v))` times `ln(v / default)`; with every size
/// at or below its default, the field with the largest elasticity.
pub fn driving_field(cfg: &Config, placement: Placement, device: bool) -> &'static str {
    let defaults = Config::default();
    let at = |c: &Config| Estimate::of_run(c, placement).peak(device).1.max(1.0);
    let base = at(cfg);
    let value = |c: &Config, field: &str| match field {
        "instances" => c.instances,
        "n_feat" => c.n_feat,
        "n_hidden" => c.n_hidden,
        "d_emb" => c.d_emb,
        "batch_size" => c.batch_size,
        _ => c.eval_batch,
    } as f64;
    let fields = SIZE_FIELDS
        .into_iter()
        .filter(|&f| f != "d_emb" || cfg.variant.has_embedding());
    let scored: Vec<(&str, f64, f64)> = fields
        .map(|field| {
            let elasticity = (at(&scaled(cfg, field, 2)) / base).log2();
            let growth = (value(cfg, field) / value(&defaults, field).max(1.0)).ln();
            (field, elasticity, elasticity * growth.max(0.0))
        })
        .collect();
    let best = |key: fn(&(&str, f64, f64)) -> f64| {
        scored
            .iter()
            .max_by(|a, b| key(a).total_cmp(&key(b)))
            .map(|s| s.0)
            .unwrap_or("instances")
    };
    if scored.iter().any(|s| s.2 > 0.0) {
        best(|s| s.2)
    } else {
        best(|s| s.1)
    }
}

/// Bytes as text: `12.3 GB`, `456.7 MB`, `8.0 kB` (powers of 1000).
pub fn fmt_bytes(bytes: f64) -> String {
    let units = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    for (scale, unit) in units {
        if bytes >= scale {
            return format!("{:.1} {unit}", bytes / scale);
        }
    }
    format!("{bytes:.0} B")
}

/// The memory available to this process on the host, in bytes: `MemAvailable` of
/// `/proc/meminfo`, lowered to what the cgroup's limit leaves and to [`LIMIT_ENV`];
/// `None` where none of them can be read (then nothing is checked).
pub fn host_available() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kib| kib * 1024.0)
    });
    let read_num =
        |path: &str| -> Option<f64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let cgroup = read_num("/sys/fs/cgroup/memory.max")
        .map(|max| max - read_num("/sys/fs/cgroup/memory.current").unwrap_or(0.0));
    [meminfo, cgroup, env_limit()]
        .into_iter()
        .flatten()
        .reduce(f64::min)
}

/// [`LIMIT_ENV`], parsed (`None` when unset or malformed).
pub fn env_limit() -> Option<f64> {
    parse_bytes(&std::env::var(LIMIT_ENV).ok()?)
}

/// `123`, `64K`, `512M`, `2G`, `1T` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_bytes(text: &str) -> Option<f64> {
    let t = text
        .trim()
        .trim_end_matches(['B', 'b'])
        .trim_end_matches('i');
    let (num, scale) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let pow = "KMGT".find(c.to_ascii_uppercase())? as i32 + 1;
            (&t[..i], 1024f64.powi(pow))
        }
        _ => (t, 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * scale)
}

/// Checks the estimate of `cfg`'s run against `host` bytes available on the host and
/// `device` bytes free on the compute device (ignored when the device is the host);
/// `None` checks nothing. The error names the driving field and gives both numbers.
pub fn check(
    cfg: &Config,
    placement: Placement,
    host: Option<f64>,
    device: Option<f64>,
) -> Result<(), ConfigError> {
    let est = Estimate::of_run(cfg, placement);
    let sides = [
        (false, host, "host memory"),
        (true, device, "device memory"),
    ];
    for (on_device, available, what) in sides {
        let Some(available) = available else { continue };
        if on_device && placement.host_is_device {
            continue;
        }
        let (phase, need) = est.peak(on_device);
        if need <= available {
            continue;
        }
        let field = driving_field(cfg, placement, on_device);
        let largest = phase
            .parts
            .iter()
            .filter(|p| p.on_device == on_device)
            .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
            .expect("a side with bytes has parts");
        return Err(ConfigError::new(
            field,
            format!(
                "the run needs about {} of {what} ({}; largest part: {} {}), but {} is available",
                fmt_bytes(need),
                phase.name,
                largest.what,
                fmt_bytes(largest.bytes),
                fmt_bytes(available)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big() -> Config {
        Config {
            n_feat: 100_000,
            d_emb: 100_000,
            ..Config::default()
        }
    }

    #[test]
    fn the_seed_setting_is_a_few_megabytes_and_grows_with_instances() {
        let one = Estimate::of_run(&Config::default(), Placement::cpu(2));
        let (_, bytes) = one.peak(false);
        // K·3P alone is 1.2 MB; the embedding 0.4 MB per copy.
        assert!(bytes > 3e6 && bytes < 3e7, "{}", fmt_bytes(bytes));
        let many = Config {
            instances: 64,
            ..Config::default()
        };
        let (_, bytes64) = Estimate::of_run(&many, Placement::cpu(2)).peak(false);
        assert!(bytes64 > 20.0 * bytes, "{bytes64} vs {bytes}");
    }

    #[test]
    fn the_oversize_config_is_refused_naming_n_feat_with_both_numbers() {
        let e = check(&big(), Placement::cpu(2), Some(16e9), None).unwrap_err();
        assert_eq!(e.field, "n_feat", "{e}");
        let text = e.to_string();
        assert!(
            text.contains("GB of host memory") && text.contains("16.0 GB is available"),
            "{text}"
        );
        assert!(!text.contains('\n'));
        check(&Config::default(), Placement::cpu(2), Some(16e9), None).unwrap();
        check(&big(), Placement::cpu(2), None, None).unwrap();
    }

    #[test]
    fn the_driving_field_is_the_one_changed_from_its_default() {
        let p = Placement::cpu(2);
        for (field, v) in [
            ("instances", 10_000),
            ("batch_size", 1 << 20),
            ("n_hidden", 100_000),
        ] {
            let mut cfg = Config::default();
            cfg.set_str(field, &v.to_string()).unwrap();
            assert_eq!(driving_field(&cfg, p, false), field);
        }
    }

    #[test]
    fn a_device_run_checks_device_bytes_against_the_device() {
        let cfg = Config {
            instances: 4096,
            ..Config::default()
        };
        let dev = Placement::device();
        let est = Estimate::of_run(&cfg, dev);
        assert!(est.peak(true).1 > est.peak(false).1 / 4.0);
        let e = check(&cfg, dev, Some(1e15), Some(1e6)).unwrap_err();
        assert!(e.to_string().contains("device memory"), "{e}");
        check(&cfg, dev, Some(1e15), None).unwrap();
    }

    #[test]
    fn byte_sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("123"), Some(123.0));
        assert_eq!(parse_bytes("64K"), Some(65536.0));
        assert_eq!(parse_bytes("2GiB"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(parse_bytes("1.5m"), Some(1.5 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(fmt_bytes(80e9), "80.0 GB");
    }
}
