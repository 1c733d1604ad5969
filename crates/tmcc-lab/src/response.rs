//! The input–output response of every feature, on any [`Device`], and its report.
//!
//! For `x = v·e_i` on `points` values of `v ∈ [-1, 1]`, `resid = out_i − r·v` (`r` = 0
//! without a residual stream), the target `t_i = act(c_i·v)` (the model's activation and
//! label coefficient; `ReLU(v)` for the seed's task) and `ρ = RMS_v t_i`: feature `i` is
//! *computed* if `RMS(resid − t_i)/ρ ≤ 0.2`, else *zero* if `RMS(resid)/ρ ≤ 0.2`, else
//! *partial* (`tmcc_model::eval`). Shapes: one forward pass of `F·points` rows per instance; the
//! result is `[instance][feature]`. Models of any depth: those without a fast path
//! (`tmcc_model::fast::no_fast_path`) go through the dense reference path. The last grid
//! point is `v = 1`, so `r + resid.last()` is APD's one-hot output `out_i` at `x = e_i`.

use serde::Serialize;
use tmcc_kernels::{Backend, Device, OnBackend};
use tmcc_model::eval::{FeatureClass, FeatureResponse, RESPONSE_TOLERANCE};
use tmcc_model::fast::FastModel;
use tmcc_model::Model;

use crate::Error;

/// Every feature's response of every instance of `model` (`[instance][feature]`) on
/// `points` values of `v`, computed on `device`.
pub fn response(
    device: &Device,
    model: &Model<f32>,
    points: usize,
) -> Result<Vec<Vec<FeatureResponse>>, Error> {
    device.run(ResponseOn { model, points })
}

/// [`response`] on one backend.
struct ResponseOn<'a> {
    model: &'a Model<f32>,
    points: usize,
}

impl OnBackend for ResponseOn<'_> {
    type Output = Result<Vec<Vec<FeatureResponse>>, Error>;
    fn run<Bk: Backend<f32> + Clone>(self, bk: Bk) -> Self::Output {
        if tmcc_model::fast::no_fast_path(&self.model.cfg).is_some() {
            return Ok(tmcc_model::dense::response(self.model, self.points));
        }
        let mut fast = FastModel::new(bk, self.model)?;
        Ok(tmcc_model::eval::response(
            &mut fast,
            &self.model.cfg,
            self.points,
        )?)
    }
}

/// Features of one instance by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub computed: usize,
    pub zero: usize,
    pub partial: usize,
}

impl Counts {
    pub fn of(features: &[FeatureResponse]) -> Self {
        let n = |c| features.iter().filter(|f| f.class == c).count();
        Self {
            computed: n(FeatureClass::Computed),
            zero: n(FeatureClass::Zero),
            partial: n(FeatureClass::Partial),
        }
    }
}

/// One feature of a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct FeatureReport {
    pub feature: usize,
    pub class: FeatureClass,
    pub err_computed: f64,
    pub err_zero: f64,
}

/// One instance of a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct InstanceReport {
    pub instance: usize,
    pub seed: u64,
    pub p: f64,
    pub computed: usize,
    pub zero: usize,
    pub partial: usize,
    pub features: Vec<FeatureReport>,
}

/// The classification of every feature of a model, with its rule (`tmcc response`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub variant: String,
    pub n_feat: usize,
    pub n_hidden: usize,
    pub points: usize,
    pub tolerance: f64,
    pub rule: String,
    pub instances: Vec<InstanceReport>,
}

impl Report {
    /// Classifies `model` on `device` with `points` grid points.
    pub fn new(device: &Device, model: &Model<f32>, points: usize) -> Result<Self, Error> {
        let resp = response(device, model, points)?;
        let cfg = &model.cfg;
        let tol = RESPONSE_TOLERANCE;
        Ok(Self {
            variant: cfg.variant.name().into(),
            n_feat: cfg.n_feat,
            n_hidden: cfg.n_hidden,
            points,
            tolerance: tol,
            rule: format!(
                "resid = out_i − r·v for x = v·e_i; target t = act(c_i·v) ({act}); ρ = RMS t; computed if \
                 RMS(resid − t)/ρ ≤ {tol}, else zero if RMS(resid)/ρ ≤ {tol}, else partial",
                act = cfg.act.name()
            ),
            instances: resp
                .iter()
                .enumerate()
                .map(|(k, feats)| {
                    let c = Counts::of(feats);
                    InstanceReport {
                        instance: k,
                        seed: cfg.instance_seed(k),
                        p: cfg.instance_p(k),
                        computed: c.computed,
                        zero: c.zero,
                        partial: c.partial,
                        features: feats
                            .iter()
                            .map(|f| FeatureReport {
                                feature: f.feature,
                                class: f.class,
                                err_computed: f.err_computed,
                                err_zero: f.err_zero,
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmcc_kernels::DeviceChoice;
    use tmcc_model::{Config, Variant};

    /// Every feature gets one class; a GPU (where there is one) gives the CPU's response
    /// to rounding.
    #[test]
    fn classifies_every_feature_on_the_cpu_and_any_gpu() {
        let cfg = Config {
            variant: Variant::EmbRes,
            n_feat: 12,
            n_hidden: 5,
            d_emb: 30,
            instances: 3,
            ..Config::default()
        };
        let model = Model::<f32>::new(&cfg).unwrap();
        let report = Report::new(&Device::Cpu, &model, 9).unwrap();
        assert_eq!(report.instances.len(), 3);
        for i in &report.instances {
            assert_eq!(i.computed + i.zero + i.partial, 12);
            assert_eq!(i.features.len(), 12);
        }
        let cpu = response(&Device::Cpu, &model, 9).unwrap();
        match Device::select(DeviceChoice::Cuda) {
            Ok((gpu, _)) => {
                let gpu = response(&gpu, &model, 9).unwrap();
                for (a, b) in cpu.iter().flatten().zip(gpu.iter().flatten()) {
                    for (x, y) in a.resid.iter().zip(&b.resid) {
                        assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs(), "{x} vs {y}");
                    }
                }
            }
            Err(why) => eprintln!("skipped the GPU comparison: {why}"),
        }
    }
}
