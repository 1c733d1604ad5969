//! Checkpoints as safetensors files, loadable with `safetensors.numpy.load_file`.
//!
//! Tensors (little-endian `f32`, instance axis first):
//!
//! | name | shape | when |
//! |---|---|---|
//! | `W1` | `[K, H, D]` | always (block `l ≥ 1` of a deeper model: `W1.l`, `b1.l`, …) |
//! | `b1` | `[K, H]` | `bias1` |
//! | `W2` | `[K, D, H]` | not `tied` |
//! | `b2` | `[K, D]` | `bias2` |
//! | `W_E` | `[K, D, F]` | embedding variants (fixed, never trained) |
//! | `M` | `[K, F, F]` | `mix` (unscaled; the residual is `r·(I + σ_k M)`) |
//! | `label_coeffs` | `[F]` | always: the labels' `c` (`y = act(c ⊙ x) + r·x`), determined by the config |
//! | `adam_m`, `adam_v` | `[K, P]` | training state (flat layout, `P` per instance) |
//!
//! Metadata (strings): `format` = `tmcc-checkpoint/1`, `config` (the TOML config), `step`
//! (steps done), `stream_positions` (comma-separated data-stream word positions, one per
//! instance) and `layout` (JSON of the flat layout).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::{Config, Variant};
use crate::io::{read, write_atomic};
use crate::layout::Layout;
use crate::model::{Float, Model};
use crate::Error;

pub const FORMAT: &str = "tmcc-checkpoint/1";

/// A model plus (optionally) the state needed to continue training it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T> {
    pub model: Model<T>,
    pub step: u64,
    /// Adam moments `(m, v)`, `K × P` each.
    pub moments: Option<(Vec<T>, Vec<T>)>,
    pub stream_positions: Option<Vec<u128>>,
}

fn to_bytes<T: Float>(v: impl Iterator<Item = T>) -> Vec<u8> {
    v.flat_map(|x| (x.as_f64() as f32).to_le_bytes()).collect()
}

impl<T: Float> Checkpoint<T> {
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let m = &self.model;
        let cfg = &m.cfg;
        let k = m.instances();
        let (f, d) = (cfg.n_feat, cfg.d_in());
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for slot in &m.layout.slots {
            let mut shape = vec![k];
            shape.extend(&slot.shape);
            let vals = m.slot_values(slot);
            tensors.push((slot.name(), shape, to_bytes(vals.into_iter())));
        }
        if let Some(e) = &m.embed {
            tensors.push(("W_E".into(), vec![k, d, f], to_bytes(e.iter().copied())));
        }
        if let Some(mx) = &m.mixing {
            tensors.push(("M".into(), vec![k, f, f], to_bytes(mx.iter().copied())));
        }
        let coeffs = crate::task::label_coeffs(cfg).into_iter().map(T::from_f64);
        tensors.push(("label_coeffs".into(), vec![f], to_bytes(coeffs)));
        if let Some((mm, vv)) = &self.moments {
            tensors.push((
                "adam_m".into(),
                vec![k, m.layout.len],
                to_bytes(mm.iter().copied()),
            ));
            tensors.push((
                "adam_v".into(),
                vec![k, m.layout.len],
                to_bytes(vv.iter().copied()),
            ));
        }
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("config".to_string(), cfg.to_toml_string());
        meta.insert("step".to_string(), self.step.to_string());
        meta.insert(
            "layout".to_string(),
            serde_json::to_string(&m.layout).expect("layout serializes"),
        );
        if let Some(pos) = &self.stream_positions {
            let s: Vec<String> = pos.iter().map(|p| p.to_string()).collect();
            meta.insert("stream_positions".to_string(), s.join(","));
        }
        let fail = |message: String| Error::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let views = tensors
            .iter()
            .map(|(n, s, b)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| fail(e.to_string()))?;
        let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| fail(e.to_string()))?;
        write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Self, Error> {
        let bytes = read(path)?;
        let fail = |message: String| Error::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |key: &str| {
            meta.get(key)
                .ok_or_else(|| fail(format!("metadata `{key}` missing (not a tmcc checkpoint?)")))
        };
        if get("format")? != FORMAT {
            return Err(fail(format!(
                "format `{}`, expected `{FORMAT}`",
                get("format")?
            )));
        }
        let cfg = Config::from_toml_str(get("config")?).map_err(|e| fail(e.to_string()))?;
        cfg.validate().map_err(|e| fail(e.to_string()))?;
        let step: u64 = get("step")?
            .parse()
            .map_err(|_| fail("metadata `step` is not a number".into()))?;
        let k = cfg.instances;
        let (f, d) = (cfg.n_feat, cfg.d_in());
        // Every tensor the config declares must be in the file with its shape before the
        // model is built: the model's size is then what the file holds, whatever the
        // config claims.
        let layout = Layout::of(&cfg);
        let check_view = |name: &str, shape: &[usize]| -> Result<TensorView<'_>, Error> {
            let t = st
                .tensor(name)
                .map_err(|_| fail(format!("tensor `{name}` missing")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(fail(format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t)
        };
        // The Adam moments are stored in the flat layout of the binary that wrote them: a
        // layout that differs from this binary's cannot be read back.
        if let Some(stored) = meta.get("layout") {
            let ours = serde_json::to_value(&layout).expect("layout serializes");
            if serde_json::from_str::<serde_json::Value>(stored).ok() != Some(ours) {
                return Err(fail(
                    "its parameter layout (metadata `layout`) differs from this tmcc's \
                     (written by another version, or edited)"
                        .into(),
                ));
            }
        }
        let mut declared: Vec<(String, Vec<usize>)> = layout
            .slots
            .iter()
            .map(|slot| (slot.name(), [&[k][..], &slot.shape].concat()))
            .collect();
        if cfg.variant.has_embedding() {
            declared.push(("W_E".into(), vec![k, d, f]));
        }
        if cfg.variant == Variant::Mix {
            declared.push(("M".into(), vec![k, f, f]));
        }
        let has_moments = st.tensor("adam_m").is_ok() || st.tensor("adam_v").is_ok();
        if has_moments {
            declared.push(("adam_m".into(), vec![k, layout.len]));
            declared.push(("adam_v".into(), vec![k, layout.len]));
        }
        for (name, shape) in &declared {
            check_view(name, shape)?;
        }
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<T>, Error> {
            Ok(check_view(name, shape)?
                .data()
                .chunks_exact(4)
                .map(|c| T::from_f64(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64))
                .collect())
        };
        let mut model = Model::<T>::new(&cfg).map_err(|e| fail(e.to_string()))?;
        let p_len = model.layout.len;
        for slot in model.layout.slots.clone() {
            let mut shape = vec![k];
            shape.extend(&slot.shape);
            let vals = tensor(&slot.name(), &shape)?;
            for inst in 0..k {
                let dst = &mut model.params[inst * p_len + slot.offset..][..slot.len];
                dst.copy_from_slice(&vals[inst * slot.len..(inst + 1) * slot.len]);
            }
        }
        if model.embed.is_some() {
            model.embed = Some(tensor("W_E", &[k, d, f])?);
        }
        if model.mixing.is_some() {
            model.mixing = Some(tensor("M", &[k, f, f])?);
        }
        let moments = match has_moments {
            true => Some((
                tensor("adam_m", &[k, p_len])?,
                tensor("adam_v", &[k, p_len])?,
            )),
            false => None,
        };
        let stream_positions = meta
            .get("stream_positions")
            .map(|s| {
                s.split(',')
                    .map(|p| p.parse::<u128>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| fail("metadata `stream_positions` is malformed".into()))
            })
            .transpose()?;
        if let Some(p) = &stream_positions {
            if p.len() != k {
                return Err(fail(format!(
                    "{} stream positions for {k} instances",
                    p.len()
                )));
            }
        }
        Ok(Self {
            model,
            step,
            moments,
            stream_positions,
        })
    }
}
