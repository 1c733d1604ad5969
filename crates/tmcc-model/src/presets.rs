//! Named, documented configs of the papers' models: the TOML files in `presets/` at the
//! repository root, compiled in. Each file cites, field by field, where its numbers come
//! from and says where it is not exact. A preset is a base: flags and `--set` override it.

use crate::config::{Config, ConfigError};

/// One preset: its name (`tmcc train --preset NAME`), a one-line summary and its TOML text.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub summary: &'static str,
    pub toml: &'static str,
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "seed-notebook",
        summary: "the seed notebook's emb_mlp run (r = 0, Adam 5e-4, 20k steps; 2-D Xavier init)",
        toml: include_str!("../../../presets/seed-notebook.toml"),
    },
    Preset {
        name: "apd-1layer",
        summary:
            "APD's 1-layer TMCC: F=100, D=1000, 50 neurons, AdamW 3e-3, quarter cosine, 10k steps",
        toml: include_str!("../../../presets/apd-1layer.toml"),
    },
    Preset {
        name: "apd-2layer",
        summary: "APD's 2-layer target: F=100, D=1000, 2 blocks of 25, AdamW 3e-3, quarter cosine, 10k steps",
        toml: include_str!("../../../presets/apd-2layer.toml"),
    },
    Preset {
        name: "spd-3layer",
        summary: "SPD's 3-layer target: F=102, D=1000, 3 blocks of 17, AdamW 3e-3, quarter cosine, 10k steps",
        toml: include_str!("../../../presets/spd-3layer.toml"),
    },
    Preset {
        name: "follow-up-clean",
        summary:
            "the follow-up paper's clean mix model: F=100, H=50, AdamW 3e-3, half cosine, 10k steps",
        toml: include_str!("../../../presets/follow-up-clean.toml"),
    },
    Preset {
        name: "elhage-abs",
        summary: "Elhage et al.'s |x| model: ReLU(W2 ReLU(W1 x) + b), F=100, H=40, importance 0.8^i, 7 p's",
        toml: include_str!("../../../presets/elhage-abs.toml"),
    },
    Preset {
        name: "tmcc-abs",
        summary: "the one-block TMCC (apd-1layer) with abs labels y = |x|",
        toml: include_str!("../../../presets/tmcc-abs.toml"),
    },
    Preset {
        name: "apd-tms-5-2",
        summary: "APD's TMS 5-2: ReLU(WᵀWx + b), U[0,1] values, p=0.05, 12 instances, script's linear lr 5e-3",
        toml: include_str!("../../../presets/apd-tms-5-2.toml"),
    },
    Preset {
        name: "apd-tms-40-10",
        summary: "APD's TMS 40-10: ReLU(WᵀWx + b), U[0,1] values, p=0.05, 3 instances, script's linear lr 5e-3",
        toml: include_str!("../../../presets/apd-tms-40-10.toml"),
    },
];

/// Every preset, in a fixed order.
pub fn all() -> &'static [Preset] {
    PRESETS
}

/// The config of preset `name`, validated; an unknown name is one line listing the known ones.
pub fn load(name: &str) -> Result<Config, ConfigError> {
    let preset = PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        let known: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        ConfigError::new(
            "preset",
            format!(
                "unknown preset `{name}`; known presets: {}",
                known.join(", ")
            ),
        )
    })?;
    let cfg = Config::from_toml_str(preset.toml)?;
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_validates_and_has_a_one_line_summary() {
        for p in all() {
            let cfg = load(p.name).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(!p.summary.contains('\n'), "{}", p.name);
            // Every value a preset sets is a comment-cited line: no preset is the defaults.
            assert_ne!(cfg, Config::default(), "{}", p.name);
        }
    }

    #[test]
    fn presets_hold_the_cited_numbers() {
        let apd = load("apd-1layer").unwrap();
        assert_eq!((apd.n_feat, apd.d_emb, apd.n_hidden), (100, 1000, 50));
        assert_eq!(
            (apd.lr, apd.weight_decay, apd.batch_size),
            (3e-3, 0.01, 2048)
        );
        assert!((apd.init_bound - (6.0f64 / 50_000.0).sqrt()).abs() < 1e-15);
        let seed = load("seed-notebook").unwrap();
        assert_eq!(
            (seed.res_factor(), seed.lr, seed.steps),
            (0.0, 5e-4, 20_000)
        );
        let two = load("apd-2layer").unwrap();
        assert_eq!(
            (two.widths(), two.naive_loss(0.01)),
            (vec![25, 25], apd.naive_loss(0.01))
        );
        let three = load("spd-3layer").unwrap();
        assert_eq!((three.n_feat, three.widths()), (102, vec![17, 17, 17]));
        let clean = load("follow-up-clean").unwrap();
        assert!((clean.init_bound_out.unwrap() - (6.0f64 / 100.0).sqrt()).abs() < 1e-15);
        let elhage = load("elhage-abs").unwrap();
        assert_eq!((elhage.n_feat, elhage.n_hidden), (100, 40));
        assert_eq!(elhage.importance_of(2), 0.8 * 0.8);
        assert_eq!(elhage.p_per_instance.len(), elhage.instances);
        // |x| of a signed value takes two ReLUs: 20 features computed.
        assert_eq!(elhage.task().naive_computed(40), 20);
        let abs = load("tmcc-abs").unwrap();
        assert_eq!(
            (abs.labels, abs.res_factor(), abs.task().naive_computed(50)),
            (crate::config::Labels::Abs, 1.0, 50)
        );
        for (name, f, h, k) in [("apd-tms-5-2", 5, 2, 12), ("apd-tms-40-10", 40, 10, 3)] {
            let tms = load(name).unwrap();
            assert_eq!(
                (tms.n_feat, tms.n_hidden, tms.instances),
                (f, h, k),
                "{name}"
            );
            assert!(tms.tied && tms.bias2 && !tms.bias1, "{name}");
            assert_eq!(tms.values, crate::config::Values::Unsigned, "{name}");
        }
    }

    #[test]
    fn an_unknown_preset_names_the_known_ones_on_one_line() {
        let e = load("apd-9layer").unwrap_err();
        assert_eq!(e.field, "preset");
        let msg = e.to_string();
        assert!(!msg.contains('\n'));
        for p in all() {
            assert!(msg.contains(p.name), "{msg}");
        }
    }
}
