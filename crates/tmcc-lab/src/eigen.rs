//! Small dense linear algebra for `F×F` matrices (F ≈ 100), in `f64`, row-major, on
//! faer: products, norms, the symmetric eigendecomposition, the SVD, an SPD solve, the
//! share of a direction that lies in a subspace, and the effective rank.
//!
//! faer works on column-major views; a row-major `m×n` slice is read as the transpose of
//! a column-major `n×m` one ([`view`]) and results are written back row by row. faer's
//! conventions are mapped onto this module's: its eigenvalues come in nondecreasing
//! order and are reversed here (descending, eigenvectors as rows); its singular values
//! are already nonincreasing. Signs of eigen- and singular vectors are whatever faer
//! returns (each pair `(u_j, v_j)` consistent); callers that need a sign fix it
//! themselves (`baselines::svd_baseline`).
//!
//! Effective rank of a matrix with singular values `s_j`: with `q_j = s_j / Σ_i s_i`,
//! `exp(−Σ_j q_j ln q_j)` (terms with `q_j = 0` count 0): `n` for `n` equal non-zero
//! singular values, 1 for a rank-1 matrix.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

/// The row-major `rows×cols` slice `a` as a faer matrix view.
fn view(a: &[f64], rows: usize, cols: usize) -> MatRef<'_, f64> {
    MatRef::from_row_major_slice(a, rows, cols)
}

/// A faer matrix as a row-major vector.
fn row_major(m: MatRef<'_, f64>) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect()
}

/// `C = A·B` for row-major `A` (`m×k`) and `B` (`k×n`).
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    assert_eq!(a.len(), m * k, "matmul: A is not {m}×{k}");
    assert_eq!(b.len(), k * n, "matmul: B is not {k}×{n}");
    let c: Mat<f64> = view(a, m, k) * view(b, k, n);
    row_major(c.as_ref())
}

/// `Aᵀ` of a row-major `m×n` matrix.
pub fn transpose(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut t = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

/// `(A + Aᵀ)/2` of a square `n×n` matrix.
pub fn symmetric_part(a: &[f64], n: usize) -> Vec<f64> {
    let mut s = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            s[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    s
}

/// Frobenius norm.
pub fn frobenius(a: &[f64]) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Root mean square of the `n(n − 1)` off-diagonal entries of a square `n×n` matrix.
pub fn offdiag_rms(a: &[f64], n: usize) -> f64 {
    let s: f64 = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
        .map(|(i, j)| a[i * n + j].powi(2))
        .sum();
    (s / (n * (n - 1)) as f64).sqrt()
}

/// Eigenvalues in descending order, and the matching unit eigenvectors as rows
/// (`vectors[j·n..(j+1)·n]` belongs to `values[j]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Eigen {
    pub n: usize,
    pub values: Vec<f64>,
    pub vectors: Vec<f64>,
}

impl Eigen {
    pub fn vector(&self, j: usize) -> &[f64] {
        &self.vectors[j * self.n..(j + 1) * self.n]
    }

    /// The first `count` eigenvectors (largest eigenvalues) as rows of a `count×n` matrix.
    pub fn top(&self, count: usize) -> &[f64] {
        &self.vectors[..count * self.n]
    }

    /// The last `count` eigenvectors (smallest eigenvalues).
    pub fn bottom(&self, count: usize) -> &[f64] {
        &self.vectors[(self.n - count) * self.n..]
    }
}

/// The eigendecomposition of a symmetric `n×n` matrix (only symmetry of the input is
/// assumed; it is not checked: faer reads the lower triangle).
pub fn sym_eigen(a: &[f64], n: usize) -> Eigen {
    assert_eq!(a.len(), n * n, "sym_eigen: not {n}×{n}");
    let evd = view(a, n, n)
        .self_adjoint_eigen(Side::Lower)
        .expect("sym_eigen: the eigendecomposition did not converge");
    let (s, u) = (evd.S().column_vector(), evd.U());
    // faer: ascending values, eigenvectors as columns; here: descending, as rows.
    let values = (0..n).rev().map(|j| s[j]).collect();
    let vectors = (0..n)
        .rev()
        .flat_map(|j| (0..n).map(move |i| u[(i, j)]))
        .collect();
    Eigen { n, values, vectors }
}

/// A thin SVD `A = U·diag(s)·Vᵀ` of an `m×n` matrix (`m ≥ n` not required: with `m < n`
/// the last `n − m` singular values are 0 and their right vectors span the null space).
/// Singular values descending.
#[derive(Clone, Debug, PartialEq)]
pub struct Svd {
    pub m: usize,
    pub n: usize,
    pub s: Vec<f64>,
    /// `m×n`, column `j` is the left singular vector of `s[j]` (0 where `s[j] = 0`).
    pub u: Vec<f64>,
    /// `n×n`, row `j` is the right singular vector of `s[j]`.
    pub vt: Vec<f64>,
}

pub fn svd(a: &[f64], m: usize, n: usize) -> Svd {
    assert_eq!(a.len(), m * n, "svd: A is not {m}×{n}");
    let a = view(a, m, n);
    // Thin when m ≥ n (U: m×n, V: n×n); otherwise the full SVD, for all n right vectors.
    let d = if m >= n { a.thin_svd() } else { a.svd() }.expect("svd: did not converge");
    let (sv, ud, vd) = (d.S().column_vector(), d.U(), d.V());
    let r = m.min(n);
    let s: Vec<f64> = (0..n).map(|j| if j < r { sv[j] } else { 0.0 }).collect();
    let mut u = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..r {
            u[i * n + j] = ud[(i, j)];
        }
    }
    let vt = row_major(vd.transpose());
    Svd { m, n, s, u, vt }
}

/// Solves `G·X = B` for a symmetric positive definite `n×n` `G` and `n×cols` `B`
/// (Cholesky `G = L·Lᵀ`). Panics if `G` is not positive definite.
pub fn solve_spd(g: &[f64], n: usize, b: &[f64], cols: usize) -> Vec<f64> {
    assert_eq!(g.len(), n * n);
    assert_eq!(b.len(), n * cols);
    let llt = view(g, n, n)
        .llt(Side::Lower)
        .expect("solve_spd: matrix is not positive definite");
    let x: Mat<f64> = llt.solve(view(b, n, cols));
    row_major(x.as_ref())
}

/// `exp` of the entropy of the normalised singular values of the `m×n` matrix `a`
/// (module documentation); 0 for the zero matrix.
pub fn effective_rank(a: &[f64], m: usize, n: usize) -> f64 {
    assert_eq!(a.len(), m * n, "effective_rank: A is not {m}×{n}");
    let s = view(a, m, n)
        .singular_values()
        .expect("effective_rank: the SVD did not converge");
    let total: f64 = s.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = s
        .iter()
        .map(|&x| x / total)
        .filter(|&q| q > 0.0)
        .map(|q| -q * q.ln())
        .sum();
    entropy.exp()
}

/// Share of `dir` (squared norm) inside the span of the orthonormal rows of `basis`
/// (`count×n`): `Σ_j (b_j·d)² / ‖d‖²` (0 for a zero direction).
pub fn subspace_share(dir: &[f64], basis: &[f64]) -> f64 {
    let n = dir.len();
    let norm2: f64 = dir.iter().map(|x| x * x).sum();
    if norm2 == 0.0 {
        return 0.0;
    }
    basis
        .chunks_exact(n)
        .map(|b| b.iter().zip(dir).map(|(x, y)| x * y).sum::<f64>().powi(2))
        .sum::<f64>()
        / norm2
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmcc_model::init::{gaussian_unit_columns, rng, Stream};

    /// A random direction: `len` Gaussian numbers scaled to unit norm (one `len×1` column).
    fn gaussian(seed: u64, len: usize) -> Vec<f64> {
        let mut r = rng(seed, Stream::Init);
        gaussian_unit_columns(&mut r, len, 1)
    }

    #[test]
    fn offdiag_rms_ignores_the_diagonal() {
        assert_eq!(offdiag_rms(&[5.0, 2.0, -2.0, 7.0], 2), 2.0);
        assert_eq!(
            offdiag_rms(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 3),
            0.0
        );
    }

    #[test]
    fn eigendecomposition_reconstructs_a_random_symmetric_matrix() {
        let n = 100;
        let a = symmetric_part(&gaussian(1, n * n), n);
        let e = sym_eigen(&a, n);
        assert!(e.values.windows(2).all(|w| w[0] >= w[1]));
        // V·Vᵀ = I and Vᵀ·diag(λ)·V = A.
        let vvt = matmul(&e.vectors, &transpose(&e.vectors, n, n), n, n, n);
        let mut lv = e.vectors.clone();
        for j in 0..n {
            lv[j * n..(j + 1) * n]
                .iter_mut()
                .for_each(|x| *x *= e.values[j]);
        }
        let rec = matmul(&transpose(&e.vectors, n, n), &lv, n, n, n);
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((vvt[i * n + j] - want).abs() < 1e-10, "VVᵀ[{i},{j}]");
                assert!((rec[i * n + j] - a[i * n + j]).abs() < 1e-9, "A[{i},{j}]");
            }
        }
        // Trace is the sum of the eigenvalues.
        let tr: f64 = (0..n).map(|i| a[i * n + i]).sum();
        assert!((tr - e.values.iter().sum::<f64>()).abs() < 1e-9);
    }

    #[test]
    fn svd_reconstructs_a_rectangular_matrix() {
        let (m, n) = (7, 5);
        let a = gaussian(2, m * n);
        let d = svd(&a, m, n);
        let mut us = d.u.clone();
        for i in 0..m {
            for j in 0..n {
                us[i * n + j] *= d.s[j];
            }
        }
        let rec = matmul(&us, &d.vt, m, n, n);
        for (x, y) in rec.iter().zip(&a) {
            assert!((x - y).abs() < 1e-10);
        }
    }

    #[test]
    fn effective_rank_of_known_matrices() {
        // k equal singular values: exactly k; rank 1: 1; zero: 0.
        let n = 6;
        let mut diag = vec![0.0; n * n];
        (0..4).for_each(|i| diag[i * n + i] = 2.5);
        assert!((effective_rank(&diag, n, n) - 4.0).abs() < 1e-12);
        let u = gaussian(6, n);
        let outer = matmul(&u, &[1.0, -2.0, 0.5], n, 1, 3);
        assert!((effective_rank(&outer, n, 3) - 1.0).abs() < 1e-9);
        assert_eq!(effective_rank(&vec![0.0; n * n], n, n), 0.0);
        // Singular values (3, 1): q = (3/4, 1/4), exp(−¾ln¾ − ¼ln¼) ≈ 1.7548.
        let two = [0.0, 3.0, -1.0, 0.0];
        let want = (-(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln())).exp();
        assert!((effective_rank(&two, 2, 2) - want).abs() < 1e-12);
        // Orthogonal invariance: Q·A has the same effective rank as A.
        let q = sym_eigen(&symmetric_part(&gaussian(7, n * n), n), n).vectors;
        let rotated = matmul(&q, &diag, n, n, n);
        assert!((effective_rank(&rotated, n, n) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn spd_solve() {
        let n = 6;
        let b = gaussian(4, n * n);
        let mut g = matmul(&b, &transpose(&b, n, n), n, n, n);
        (0..n).for_each(|i| g[i * n + i] += 0.5);
        let rhs = gaussian(5, n * 2);
        let x = solve_spd(&g, n, &rhs, 2);
        for (u, v) in matmul(&g, &x, n, n, 2).iter().zip(&rhs) {
            assert!((u - v).abs() < 1e-10);
        }
    }

    #[test]
    fn random_directions_share_the_subspace_dimension_fraction() {
        let (n, h) = (100, 50);
        let e = sym_eigen(&symmetric_part(&gaussian(3, n * n), n), n);
        let dirs = 2000;
        let mean: f64 = (0..dirs)
            .map(|i| subspace_share(&gaussian(100 + i as u64, n), e.top(h)))
            .sum::<f64>()
            / dirs as f64;
        // Each share is Beta(h/2, (n−h)/2): sd ≈ 0.05, so the mean of 2000 has sd ≈ 0.001.
        assert!(
            (mean - h as f64 / n as f64).abs() < 0.01,
            "mean share {mean}"
        );
        // Directions inside the subspace have share 1, outside 0.
        assert!((subspace_share(e.vector(3), e.top(h)) - 1.0).abs() < 1e-12);
        assert!(subspace_share(e.vector(n - 1), e.top(h)).abs() < 1e-12);
    }
}
