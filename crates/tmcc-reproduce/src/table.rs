//! Markdown tables and number formatting for the report.

/// A Markdown table from a header and rows of cells.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}

/// `mean ± se` with 4 decimals.
pub fn pm(mean: f64, se: f64) -> String {
    format!("{mean:.4} ± {se:.4}")
}

/// A p-value in compact scientific notation.
pub fn pval(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}
