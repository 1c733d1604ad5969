//! Sparse batches of the task. Each coordinate of `x ∈ R^F` is independently active with
//! probability `p` and then `U[-1, 1]`, else exactly 0; labels `y = ReLU(x) + r·x` are
//! never stored (they are zero wherever `x` is). The other laws of crate::data (values
//! `U[0, 1]`, at least one active, exactly `k` active) are drawn by the same walk, see
//! [`draw_part`]; the default law consumes the stream exactly as it always has.
//!
//! A batch of `K` instances × `B` samples is one CSR matrix of `K·B` rows (instance-major)
//! with sorted column indices. It is drawn sparse: the gaps between active cells of a
//! row are geometric, `gap = ⌊ln U / ln(1−p)⌋`, `U ~ U(0, 1]`, which gives exactly
//! independent Bernoulli(`p`) cells while drawing only `≈ B·(F·p + 1)` random numbers
//! (one 64-bit draw per active cell and one per row end, see [`Sampler`]).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tmcc_kernels::Scalar;

use crate::data::{Activity, DataSpec, Values};

/// `K·B` samples as CSR over `F` columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostBatch<T> {
    pub instances: usize,
    pub rows_per_instance: usize,
    pub n_feat: usize,
    /// `K·B + 1` offsets.
    pub row_ptr: Vec<u32>,
    pub col: Vec<u32>,
    pub val: Vec<T>,
}

impl<T: Scalar> HostBatch<T> {
    /// Builds the CSR form of dense `K×B×F` samples (zeros dropped).
    pub fn from_dense(instances: usize, rows: usize, n_feat: usize, dense: &[T]) -> Self {
        assert_eq!(dense.len(), instances * rows * n_feat);
        let mut b = Self {
            instances,
            rows_per_instance: rows,
            n_feat,
            row_ptr: vec![0],
            ..Self::default()
        };
        for row in dense.chunks_exact(n_feat.max(1)) {
            for (f, &v) in row.iter().enumerate() {
                if v != T::zero() {
                    b.col.push(f as u32);
                    b.val.push(v);
                }
            }
            b.row_ptr.push(b.col.len() as u32);
        }
        b
    }

    /// The dense `B×F` samples of instance `k`.
    pub fn dense_instance(&self, k: usize) -> Vec<T> {
        let (rows, f) = (self.rows_per_instance, self.n_feat);
        let mut d = vec![T::zero(); rows * f];
        for b in 0..rows {
            let row = k * rows + b;
            for i in self.row_ptr[row] as usize..self.row_ptr[row + 1] as usize {
                d[b * f + self.col[i] as usize] = self.val[i];
            }
        }
        d
    }

    pub fn nnz(&self) -> usize {
        self.col.len()
    }
}

/// One instance's share of a batch while it is drawn, and its row-end table.
#[derive(Clone, Debug, Default)]
struct Part<T> {
    row_len: Vec<u32>,
    col: Vec<u32>,
    val: Vec<T>,
    /// `ends[r] = ⌊q^r·2³²⌋` (`q = 1 − p`) for `r = 0 ..= min(n_feat, MAX_TABLE)`, built
    /// for `(table_p, table_f)`.
    ends: Vec<u64>,
    table_p: f64,
    table_f: usize,
    /// `F` flags of the cells chosen so far in an exactly-`k` row (all false between rows).
    chosen: Vec<bool>,
    /// The cells of an exactly-`k` row, sorted before they are written.
    picks: Vec<u32>,
}

/// Longest row-end table (rows longer than this use the logarithm for the last gaps).
const MAX_TABLE: usize = 1 << 12;

/// Draws batches for `K` instances, each from its own random stream and probability.
pub struct Sampler<T> {
    pub rngs: Vec<ChaCha8Rng>,
    pub ps: Vec<f64>,
    data: DataSpec,
    parts: Vec<Part<T>>,
}

/// An active cell's value from 32 random bits `j`: `(j + ½)/2³¹ − 1 ∈ (−1, 1)` (signed) or
/// `(j + ½)/2³² ∈ (0, 1)` (unsigned).
#[inline]
fn cell_value(values: Values, j: u64) -> f64 {
    match values {
        Values::Signed => (j as f64 + 0.5) * (1.0 / 2_147_483_648.0) - 1.0,
        Values::Unsigned => (j as f64 + 0.5) * (1.0 / 4_294_967_296.0),
    }
}

/// Draws one instance's `rows×n_feat` cells into `part` (cleared first). Each row is its
/// own geometric walk, so a stream of rows does not depend on how it is cut into batches.
///
/// One 64-bit draw per step of the walk: the high 32 bits give `U ∈ (0, 1]` for the gap
/// `⌊ln U / ln(1−p)⌋` to the next active cell, the low 32 bits that cell's value
/// `(j + ½)/2³¹ − 1 ∈ (−1, 1)`. The gap's law is exactly geometric up to the 2⁻³²
/// resolution of `U` (a `2.3·10⁻¹⁰` tail of gaps beyond `ln 2⁻³² / ln(1−p)` is cut, far
/// past any row). Whether the row ends here (`gap ≥` the cells left, i.e.
/// `U ≤ (1−p)^left`) is read from a table, and so is a gap of 0 (`U > 1−p`): the
/// logarithm is only taken for the active cells that follow a gap.
///
/// At least one active: the row's first step draws the first active cell `j` from its
/// truncated geometric law by inverse CDF, `j = ⌊ln(1 − V·(1 − q^F)) / ln q⌋` with
/// `V = 1 − U ∈ [0, 1)` from the same high 32 bits (and the value from the low 32), then
/// the walk goes on from `j + 1` as above. Exactly `k`: Floyd's algorithm picks `k`
/// distinct cells (`k` bounded integer draws), sorted, then one 32-bit draw per value.
fn draw_part<T: Scalar>(
    rng: &mut ChaCha8Rng,
    p: f64,
    data: DataSpec,
    rows: usize,
    n_feat: usize,
    part: &mut Part<T>,
) {
    part.row_len.clear();
    part.col.clear();
    part.val.clear();
    if let Activity::Exactly(k) = data.activity {
        draw_exactly_k(rng, k, data.values, rows, n_feat, part);
        return;
    }
    let log_q = (-p).ln_1p(); // ln(1 − p); −∞ when p = 1 (every gap 0)
    if part.table_p != p || part.table_f != n_feat || part.ends.is_empty() {
        let len = n_feat.min(MAX_TABLE) + 1;
        part.ends.clear();
        part.ends.extend((0..len).map(|r| {
            let t = if r == 0 {
                1.0
            } else {
                (r as f64 * log_q).exp()
            };
            (t * 4_294_967_296.0) as u64
        }));
        part.table_p = p;
        part.table_f = n_feat;
    }
    let ends = &part.ends;
    // 1 − q^F, the probability of a non-empty row (at least one active).
    let non_empty = -(n_feat as f64 * log_q).exp_m1();
    for _ in 0..rows {
        let mut pos = 0usize;
        let mut len = 0u32;
        if data.activity == Activity::AtLeastOne && n_feat > 0 {
            let w: u64 = rng.random();
            let v = 1.0 - ((w >> 32) + 1) as f64 * (1.0 / 4_294_967_296.0);
            let first = ((-v * non_empty).ln_1p() / log_q) as usize;
            pos = first.min(n_feat - 1);
            part.col.push(pos as u32);
            part.val
                .push(T::from_f64(cell_value(data.values, w & 0xffff_ffff)));
            len += 1;
            pos += 1;
        }
        while pos < n_feat {
            let w: u64 = rng.random();
            let hi = (w >> 32) + 1; // U·2³² ∈ [1, 2³²]
            let left = n_feat - pos;
            if left < ends.len() && hi <= ends[left] {
                break; // gap ≥ left: the row ends
            }
            // gap = 0 exactly when U > q, i.e. hi > ⌊q·2³²⌋ (most cells at high p: no ln).
            let gap = if hi > ends[1] {
                0
            } else {
                let u = hi as f64 * (1.0 / 4_294_967_296.0);
                // gap ≥ 0 is finite (ln U ≤ 0, ln(1 − p) < 0); truncation is the floor.
                (u.ln() / log_q) as usize
            };
            if gap >= left {
                break; // only when the table is shorter than the row, or at ±1 ulp
            }
            pos += gap;
            part.col.push(pos as u32);
            part.val
                .push(T::from_f64(cell_value(data.values, w & 0xffff_ffff)));
            len += 1;
            pos += 1;
        }
        part.row_len.push(len);
    }
}

/// Draws `rows` rows of exactly `k` active cells each (Floyd: for `j = F−k … F−1` pick
/// `t ∈ 0..=j`, taking `j` itself if `t` is already chosen; every `k`-set is equally likely).
fn draw_exactly_k<T: Scalar>(
    rng: &mut ChaCha8Rng,
    k: usize,
    values: Values,
    rows: usize,
    n_feat: usize,
    part: &mut Part<T>,
) {
    part.chosen.clear();
    part.chosen.resize(n_feat, false);
    for _ in 0..rows {
        part.picks.clear();
        for j in n_feat - k..n_feat {
            let t = rng.random_range(0..=j);
            let pick = if part.chosen[t] { j } else { t };
            part.chosen[pick] = true;
            part.picks.push(pick as u32);
        }
        part.picks.sort_unstable();
        for &c in &part.picks {
            part.chosen[c as usize] = false;
            part.col.push(c);
            let j: u32 = rng.random();
            part.val.push(T::from_f64(cell_value(values, j as u64)));
        }
        part.row_len.push(k as u32);
    }
}

impl<T: Scalar> Sampler<T> {
    /// Today's law (Bernoulli cells, `U[−1, 1]` values) for every instance.
    pub fn new(rngs: Vec<ChaCha8Rng>, ps: Vec<f64>) -> Self {
        assert_eq!(rngs.len(), ps.len());
        let parts = vec![Part::default(); rngs.len()];
        Self {
            rngs,
            ps,
            data: DataSpec::default(),
            parts,
        }
    }

    /// The same sampler drawing the law `data` (crate::data).
    pub fn with_data(mut self, data: DataSpec) -> Self {
        self.data = data;
        self
    }

    /// Draws `rows` samples per instance into `out`, reusing its storage.
    pub fn sample(&mut self, rows: usize, n_feat: usize, out: &mut HostBatch<T>) {
        let data = self.data;
        self.rngs
            .par_iter_mut()
            .zip(&self.ps)
            .zip(self.parts.par_iter_mut())
            .for_each(|((rng, &p), part)| draw_part(rng, p, data, rows, n_feat, part));
        out.instances = self.rngs.len();
        out.rows_per_instance = rows;
        out.n_feat = n_feat;
        out.row_ptr.clear();
        out.col.clear();
        out.val.clear();
        out.row_ptr.push(0);
        let mut at = 0u32;
        for part in &self.parts {
            for &n in &part.row_len {
                at += n;
                out.row_ptr.push(at);
            }
            out.col.extend_from_slice(&part.col);
            out.val.extend_from_slice(&part.val);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{rng, Stream};

    #[test]
    fn density_and_values_match_the_task() {
        for p in [0.001, 0.01, 0.3, 1.0] {
            let mut s = Sampler::<f64>::new(vec![rng(5, Stream::Data)], vec![p]);
            let mut b = HostBatch::default();
            let (rows, f) = (4000, 50);
            s.sample(rows, f, &mut b);
            let cells = (rows * f) as f64;
            let se = (p * (1.0 - p) / cells).sqrt();
            let rate = b.nnz() as f64 / cells;
            assert!((rate - p).abs() <= 5.0 * se + 1e-12, "p={p}: rate {rate}");
            assert!(b.val.iter().all(|v| (-1.0..=1.0).contains(v)));
            let mean = b.val.iter().sum::<f64>() / b.nnz() as f64;
            assert!(mean.abs() < 5.0 * (1.0 / 3.0 / b.nnz() as f64).sqrt());
            assert_rows_sorted(&b);
        }
    }

    #[test]
    fn active_counts_per_row_are_binomial() {
        // P(row empty) = (1−p)^F and P(one active) = F·p·(1−p)^(F−1): the row-end table
        // and the logarithm agree on where rows end.
        for (p, f) in [(0.01, 100), (0.2, 7), (0.002, 5000)] {
            let mut s = Sampler::<f32>::new(vec![rng(3, Stream::Data)], vec![p]);
            let mut b = HostBatch::default();
            let rows = 40_000;
            s.sample(rows, f, &mut b);
            let count = |n: u32| {
                b.row_ptr.windows(2).filter(|w| w[1] - w[0] == n).count() as f64 / rows as f64
            };
            let q: f64 = 1.0 - p;
            let want0 = q.powi(f as i32);
            let want1 = f as f64 * p * q.powi(f as i32 - 1);
            for (got, want) in [(count(0), want0), (count(1), want1)] {
                let se = (want * (1.0 - want) / rows as f64).sqrt();
                assert!(
                    (got - want).abs() < 5.0 * se,
                    "p={p} F={f}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn every_feature_is_hit_evenly() {
        let mut s = Sampler::<f32>::new(vec![rng(9, Stream::Data)], vec![0.05]);
        let mut b = HostBatch::default();
        s.sample(20_000, 10, &mut b);
        let mut counts = [0usize; 10];
        b.col.iter().for_each(|&c| counts[c as usize] += 1);
        let expect = 20_000.0 * 0.05;
        for c in counts {
            assert!(
                (c as f64 - expect).abs() < 5.0 * expect.sqrt(),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn a_stream_of_rows_does_not_depend_on_the_batch_size() {
        let mut whole = Sampler::<f32>::new(vec![rng(4, Stream::Eval)], vec![0.1]);
        let mut cut = Sampler::<f32>::new(vec![rng(4, Stream::Eval)], vec![0.1]);
        let (mut a, mut b, mut c) = (
            HostBatch::default(),
            HostBatch::default(),
            HostBatch::default(),
        );
        whole.sample(30, 20, &mut a);
        cut.sample(10, 20, &mut b);
        cut.sample(20, 20, &mut c);
        let joined: Vec<f32> = b
            .dense_instance(0)
            .into_iter()
            .chain(c.dense_instance(0))
            .collect();
        assert_eq!(a.dense_instance(0), joined);
    }

    #[test]
    fn dense_round_trip() {
        let mut s = Sampler::<f32>::new(
            vec![rng(1, Stream::Data), rng(2, Stream::Data)],
            vec![0.2, 0.5],
        );
        let mut b = HostBatch::default();
        s.sample(7, 6, &mut b);
        let dense: Vec<f32> = (0..2).flat_map(|k| b.dense_instance(k)).collect();
        assert_eq!(HostBatch::from_dense(2, 7, 6, &dense), b);
    }

    fn draw(data: DataSpec, p: f64, rows: usize, f: usize) -> HostBatch<f64> {
        let mut s = Sampler::<f64>::new(vec![rng(11, Stream::Data)], vec![p]).with_data(data);
        let mut b = HostBatch::default();
        s.sample(rows, f, &mut b);
        b
    }

    fn row_counts(b: &HostBatch<f64>) -> Vec<u32> {
        b.row_ptr.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Every row of `b` lists its features in strictly increasing order.
    fn assert_rows_sorted(b: &HostBatch<f64>) {
        for row in b.row_ptr.windows(2) {
            let cols = &b.col[row[0] as usize..row[1] as usize];
            assert!(cols.windows(2).all(|w| w[0] < w[1]), "{cols:?}");
        }
    }

    /// How many rows of `b` each of its `f` features is active in.
    fn feature_counts(b: &HostBatch<f64>, f: usize) -> Vec<usize> {
        let mut counts = vec![0usize; f];
        b.col.iter().for_each(|&c| counts[c as usize] += 1);
        counts
    }

    #[test]
    fn at_least_one_is_bernoulli_conditioned_on_a_non_empty_row() {
        // P(n = 1 | n ≥ 1) = F·p·q^(F−1) / (1 − q^F); each feature p/(1 − q^F).
        for (p, f) in [(0.01, 100), (0.2, 7), (1.0, 5)] {
            let data = DataSpec {
                activity: Activity::AtLeastOne,
                values: Values::Signed,
            };
            let rows = 40_000;
            let b = draw(data, p, rows, f);
            let counts = row_counts(&b);
            assert!(counts.iter().all(|&n| n >= 1), "p={p}: an empty row");
            let q: f64 = 1.0 - p;
            let non_empty = 1.0 - q.powi(f as i32);
            let want1 = f as f64 * p * q.powi(f as i32 - 1) / non_empty;
            let got1 = counts.iter().filter(|&&n| n == 1).count() as f64 / rows as f64;
            let se = (want1 * (1.0 - want1) / rows as f64).sqrt();
            assert!(
                (got1 - want1).abs() <= 5.0 * se + 1e-12,
                "p={p}: {got1} vs {want1}"
            );
            let want = rows as f64 * data.marginal(p, f);
            for c in feature_counts(&b, f) {
                assert!((c as f64 - want).abs() <= 5.0 * want.sqrt() + 1e-9, "p={p}");
            }
            assert_rows_sorted(&b);
        }
    }

    #[test]
    fn exactly_k_rows_hold_k_distinct_features_evenly() {
        for (k, f) in [(1, 100), (3, 10), (5, 5)] {
            let data = DataSpec {
                activity: Activity::Exactly(k),
                values: Values::Signed,
            };
            let rows = 20_000;
            let b = draw(data, 0.01, rows, f);
            assert!(row_counts(&b).iter().all(|&n| n as usize == k));
            assert_rows_sorted(&b);
            let want = (rows * k) as f64 / f as f64;
            let sd = (want * (1.0 - k as f64 / f as f64)).sqrt();
            for c in feature_counts(&b, f) {
                assert!(
                    (c as f64 - want).abs() <= 5.0 * sd + 1e-9,
                    "k={k}: {c} vs {want}"
                );
            }
            // Pairs are even too (every k-set equally likely): feature 0 with 1 vs 0 with 2.
            if k >= 2 && f > 2 {
                let has = |r: usize, c: u32| {
                    b.col[b.row_ptr[r] as usize..b.row_ptr[r + 1] as usize].contains(&c)
                };
                let pair = |c: u32| (0..rows).filter(|&r| has(r, 0) && has(r, c)).count() as f64;
                let (a, z) = (pair(1), pair(f as u32 - 1));
                assert!((a - z).abs() <= 5.0 * (a + z).sqrt(), "{a} vs {z}");
            }
        }
    }

    #[test]
    fn unsigned_values_are_uniform_on_zero_one_from_the_same_stream() {
        let signed = draw(DataSpec::default(), 0.3, 5000, 20);
        let data = DataSpec {
            activity: Activity::Bernoulli,
            values: Values::Unsigned,
        };
        let unsigned = draw(data, 0.3, 5000, 20);
        // Same cells (the stream is consumed alike), values mapped from the same bits.
        assert_eq!(
            (&signed.row_ptr, &signed.col),
            (&unsigned.row_ptr, &unsigned.col)
        );
        for (s, u) in signed.val.iter().zip(&unsigned.val) {
            assert!((0.0..1.0).contains(u) && *u > 0.0);
            assert!(((s + 1.0) / 2.0 - u).abs() < 1e-15);
        }
        let n = unsigned.nnz() as f64;
        let mean = unsigned.val.iter().sum::<f64>() / n;
        assert!((mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n).sqrt());
    }
}
