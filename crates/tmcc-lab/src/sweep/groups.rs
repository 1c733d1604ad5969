//! Grouping a sweep's runs into multi-instance models: consecutive runs whose configs
//! agree in every field but `seed`, `p` and `sigma` train side by side as the instances of
//! one run, `K` at a time: at most `max_instances`, and at most what the `u32` indices of
//! a sparse batch allow (`max(batch_size, eval_batch)·n_feat·K ≤ 2³² − 2`).

use tmcc_model::Config;

use super::results::RUNS_DIR;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::tests::FILE;
    use crate::sweep::SweepSpec;

    #[test]
    fn expands_in_documented_order() {
        let s = SweepSpec::from_toml_str(FILE).unwrap();
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
}
