//! Small dense linear algebra for `F×F` matrices (F ≈ 100), in `f64`, row-major:
//! products, norms, the symmetric eigendecomposition (cyclic Jacobi), the SVD (through the
//! eigendecomposition of `AᵀA`), and the share of a direction that lies in a subspace.
//!
//! Jacobi: rotations `A ← PᵀAP` zero one off-diagonal pair at a time (Numerical Recipes'
//! `jacobi`), sweeping all pairs until the off-diagonal mass is below `1e-24·‖A‖²`; the
//! product of the rotations holds the eigenvectors. About `10·n³` flops per sweep,
//! a few milliseconds for `n = 100`.

/// `C = A·B` for row-major `A` (`m×k`) and `B` (`k×n`).
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    assert_eq!(a.len(), m * k, "matmul: A is not {m}×{k}");
    assert_eq!(b.len(), k * n, "matmul: B is not {k}×{n}");
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        for (l, &ail) in a[i * k..(i + 1) * k].iter().enumerate() {
            if ail != 0.0 {
                for (cj, &blj) in row.iter_mut().zip(&b[l * n..(l + 1) * n]) {
                    *cj += ail * blj;
                }
            }
        }
    }
    c
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
/// assumed; it is not checked).
pub fn sym_eigen(a: &[f64], n: usize) -> Eigen {
    assert_eq!(a.len(), n * n, "sym_eigen: not {n}×{n}");
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = m.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        if off <= 1e-24 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← A·P (columns p, q), then A ← Pᵀ·A (rows p, q); V ← V·P.
                for k in 0..n {
                    let (akp, akq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    // Stable sort: equal eigenvalues (e.g. of I) keep their original order.
    order.sort_by(|&i, &j| m[j * n + j].total_cmp(&m[i * n + i]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (row, &col) in order.iter().enumerate() {
        for k in 0..n {
            vectors[row * n + k] = v[k * n + col];
        }
    }
    Eigen { n, values, vectors }
}

/// A thin SVD `A = U·diag(s)·Vᵀ` of an `m×n` matrix (`m ≥ n` not required; only the
/// `n` right singular vectors are computed, from `AᵀA`). Singular values descending.
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
    let ata = matmul(&transpose(a, m, n), a, n, m, n);
    let e = sym_eigen(&ata, n);
    let s: Vec<f64> = e.values.iter().map(|l| l.max(0.0).sqrt()).collect();
    let av = matmul(a, &transpose(&e.vectors, n, n), m, n, n); // column j = A·v_j
    let mut u = vec![0.0; m * n];
    for j in 0..n {
        if s[j] > 1e-300 {
            for i in 0..m {
                u[i * n + j] = av[i * n + j] / s[j];
            }
        }
    }
    Svd {
        m,
        n,
        s,
        u,
        vt: e.vectors,
    }
}

/// Solves `G·X = B` for a symmetric positive definite `n×n` `G` and `n×cols` `B`
/// (Cholesky). Panics if `G` is not positive definite.
pub fn solve_spd(g: &[f64], n: usize, b: &[f64], cols: usize) -> Vec<f64> {
    assert_eq!(g.len(), n * n);
    assert_eq!(b.len(), n * cols);
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = g[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                assert!(s > 0.0, "solve_spd: matrix is not positive definite");
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut x = b.to_vec();
    for c in 0..cols {
        // L·y = b, then Lᵀ·x = y.
        for i in 0..n {
            let s: f64 = (0..i).map(|k| l[i * n + k] * x[k * cols + c]).sum();
            x[i * cols + c] = (x[i * cols + c] - s) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k * cols + c]).sum();
            x[i * cols + c] = (x[i * cols + c] - s) / l[i * n + i];
        }
    }
    x
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
