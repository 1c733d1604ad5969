//! Executing one shard of a sweep: its runs in groups of instances side by side, each group
//! trained and evaluated by the [runner](crate::runner), its run directory written under
//! `runs/`, and `results.json` / `results.csv` rewritten after every group
//! (`complete: true` once the shard is done).
//!
//! Progress lines come about every 5 s with the shard's ETA, measured in instance-steps:
//! a group of `K` instances and `S` steps is `K·S` units of work ([`Pace`]). A stop
//! request (Ctrl-C) ends the shard after the current logged step; the finished groups stay
//! in the results, `complete: false`.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use tmcc_model::{Config, Model};

use super::groups::{groups, Group};
use super::results::{row, GroupRecord, Place, Results, RunMetrics, SweepDir};
use super::spec::SweepSpec;
use super::SweepShard;
use crate::runner::{
    check_memory, fmt_secs, run, Device, Every, Observer, Outcome, Pace, Progress, RunOptions,
    RunState, PROGRESS_PERIOD,
};
use crate::{Error, WithContext};

/// The runs of one shard, grouped into models; every config validated.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    pub shard: SweepShard,
    /// Every run of the sweep (`SweepSpec::expand`), in run order.
    pub runs: Vec<Config>,
    /// The indices of this shard's runs.
    pub range: Range<usize>,
    pub groups: Vec<Group>,
}

impl ShardPlan {
    /// This shard's part of `runs` (all the runs of a sweep), in groups of at most
    /// `max_instances` instances; an invalid group config is an error naming its runs.
    pub fn new(runs: Vec<Config>, shard: SweepShard, max_instances: usize) -> Result<Self, Error> {
        let range = shard.range(runs.len());
        let mine: Vec<(usize, Config)> = range.clone().map(|i| (i, runs[i].clone())).collect();
        let groups = groups(&mine, max_instances);
        for g in &groups {
            g.cfg
                .validate()
                .with_context(|| format!("group of runs {:?}", g.runs))?;
        }
        Ok(Self {
            shard,
            runs,
            range,
            groups,
        })
    }
}

impl ShardPlan {
    /// Checks the memory of every group on `device` ([`check_memory`]) before anything is
    /// trained or written. A group that does not fit is named with its instance count,
    /// and when fewer instances side by side would fit, with the `--max-instances` that does.
    pub fn check_memory(&self, device: &Device) -> Result<(), Error> {
        for g in &self.groups {
            let Err(e) = check_memory(device, &g.cfg) else {
                continue;
            };
            let first_k = |k: usize| Config {
                instances: k,
                seed_per_instance: g.cfg.seed_per_instance[..k].to_vec(),
                p_per_instance: g.cfg.p_per_instance[..k].to_vec(),
                sigma_per_instance: g.cfg.sigma_per_instance[..k].to_vec(),
                ..g.cfg.clone()
            };
            let fits = |k: usize| check_memory(device, &first_k(k)).is_ok();
            // the largest k that fits, by bisection (the estimate grows with k)
            let (mut lo, mut hi) = (0, g.cfg.instances);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if fits(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let hint = match lo {
                0 => String::new(),
                k => format!("; --max-instances {k} fits"),
            };
            // The config error stays the cause, so callers still see the field it names.
            return Err(Error::Context {
                what: format!(
                    "group of runs {}..={} ({} instance(s) side by side{hint})",
                    g.runs[0],
                    g.runs[g.runs.len() - 1],
                    g.cfg.instances
                ),
                source: Box::new(e),
            });
        }
        Ok(())
    }
}

/// How a shard ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShardEnd {
    /// Every run has its row; `seconds` of training and evaluation.
    Complete { seconds: f64 },
    /// Stopped in group `group` (0-based); the groups before it have their rows.
    Interrupted { group: usize },
}

/// A shard being trained into its sweep directory.
pub struct ShardRun {
    pub plan: ShardPlan,
    pub dir: SweepDir,
    pub results: Results,
    /// Why `--device auto` chose the CPU, kept in each group's `metrics.json`.
    pub device_note: Option<String>,
}

impl ShardRun {
    /// Creates the sweep directory `out` (an existing one only with `force`) with the sweep
    /// file `text` and the shard's empty results.
    pub fn create(
        spec: &SweepSpec,
        text: &str,
        plan: ShardPlan,
        out: &std::path::Path,
        force: bool,
    ) -> Result<Self, Error> {
        let dir = SweepDir::create(out, force, Some(text.as_bytes()))?;
        let results = Results::new(spec, plan.shard);
        dir.write_results(&results)?;
        Ok(Self {
            plan,
            dir,
            results,
            device_note: None,
        })
    }

    /// Trains, evaluates and records every group on `device`, writing progress lines
    /// through `log`; `stop` set (e.g. by Ctrl-C) interrupts the shard.
    pub fn run(
        &mut self,
        device: &Device,
        log: &mut dyn FnMut(&str),
        stop: &AtomicBool,
    ) -> Result<ShardEnd, Error> {
        let plan = &self.plan;
        let n_groups = plan.groups.len();
        let total_work: f64 = plan.groups.iter().map(work).sum();
        let pace = Pace::new(total_work);
        let mut work_done = 0.0;
        for (gi, g) in plan.groups.iter().enumerate() {
            let cfg = &g.cfg;
            log(&format!(
                "group {}/{n_groups}: runs {}..={} — {} × {} instance(s), {} steps",
                gi + 1,
                g.runs[0],
                g.runs[g.runs.len() - 1],
                cfg.variant.name(),
                cfg.instances,
                cfg.steps
            ));
            let mut watch = GroupProgress {
                name: format!("group {}/{n_groups}", gi + 1),
                weight: g.runs.len() as f64,
                work_done,
                total_work,
                pace: &pace,
                every: Every::new(PROGRESS_PERIOD),
                log: &mut *log,
                stop,
                evaluating: false,
            };
            let model = Model::<f32>::new(cfg)?;
            let opts = RunOptions {
                device_note: self.device_note.as_deref(),
                ..RunOptions::default()
            };
            let outcome = run(device, model, &opts, &mut watch);
            let what = if watch.evaluating {
                "evaluating the group of runs"
            } else {
                "group of runs"
            };
            let done = match outcome.with_context(|| format!("{what} {:?}", g.runs))? {
                Outcome::Finished(done) => done,
                Outcome::Stopped { .. } => return Ok(ShardEnd::Interrupted { group: gi }),
            };
            let name = g.dir_name();
            let run_dir = self.dir.group_dir(g)?;
            run_dir.write_config(cfg)?;
            run_dir.write_checkpoint(&done.checkpoint)?;
            run_dir.write_metrics(&done.metrics)?;
            let m = &done.metrics;
            for (k, &index) in g.runs.iter().enumerate() {
                self.results.rows.push(row(
                    index,
                    &plan.runs[index],
                    &RunMetrics {
                        eval: &m.eval[k],
                        final_train_loss: m.final_train_loss.get(k).copied().unwrap_or(f64::NAN),
                        learned_sigma: m.learned_sigma.get(k).copied(),
                        steps_done: m.steps_done,
                    },
                    &Place {
                        shard: plan.shard,
                        dir: &name,
                        instance: k,
                    },
                ));
            }
            self.results.groups.push(GroupRecord {
                dir: name,
                runs: g.runs.clone(),
                seconds: m.seconds,
            });
            self.results.complete = self.results.rows.len() == plan.range.len();
            self.dir.write_results(&self.results)?;
            work_done += work(g);
            let ratios: Vec<String> = m
                .eval
                .iter()
                .take(8)
                .map(|e| format!("{:.4}", e.ratio))
                .collect();
            log(&format!(
                "group {}/{n_groups} done in {}: loss/naive {}{}",
                gi + 1,
                fmt_secs(m.seconds, 1),
                ratios.join(" "),
                if m.eval.len() > 8 { " …" } else { "" }
            ));
        }
        self.results.complete = true;
        self.dir.write_results(&self.results)?;
        Ok(ShardEnd::Complete {
            seconds: pace.elapsed_s(),
        })
    }
}

/// A group's work in instance-steps.
fn work(g: &Group) -> f64 {
    (g.cfg.steps * g.runs.len() as u64) as f64
}

/// Watches one group: the shard's progress and ETA about every 5 s, the stop flag, and
/// whether training has finished (so an error names the phase).
struct GroupProgress<'a> {
    name: String,
    weight: f64,
    work_done: f64,
    total_work: f64,
    pace: &'a Pace,
    every: Every,
    log: &'a mut dyn FnMut(&str),
    stop: &'a AtomicBool,
    evaluating: bool,
}

impl Observer for GroupProgress<'_> {
    fn on_log(&mut self, p: &Progress, _: &dyn RunState) -> Result<(), Error> {
        if self.every.due() {
            let done = self.work_done + p.step as f64 * self.weight;
            (self.log)(&format!(
                "{}: step {}/{} loss {:.3e}; shard {:.0}% eta {}",
                self.name,
                p.step,
                p.steps,
                p.mean_loss(),
                100.0 * done / self.total_work.max(1.0),
                fmt_secs(self.pace.eta_s(done), 1)
            ));
        }
        Ok(())
    }

    fn stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn evaluating(&mut self) {
        self.evaluating = true;
    }
}
