//! The error type shared by every plotting function.

use std::path::PathBuf;

/// Why a figure could not be produced. No file is left at the target path
/// (nor a `.tmp` file beside it) when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The figure has nothing to draw (no series, no points, no bars...).
    #[error("figure '{figure}': nothing to plot: {reason}")]
    Empty { figure: String, reason: String },
    /// The input is inconsistent (mismatched lengths, no finite value, ...).
    #[error("figure '{figure}': invalid data: {reason}")]
    InvalidData { figure: String, reason: String },
    /// The embedded font could not be registered with plotters.
    #[error("the embedded DejaVu Sans font could not be registered")]
    Font,
    /// plotters failed while drawing.
    #[error("rendering failed: {0}")]
    Render(String),
    /// The bitmap could not be encoded as PNG.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    /// Writing or renaming the output file failed.
    #[error("cannot write '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PlotError {
    pub(crate) fn empty(figure: &str, reason: impl Into<String>) -> Self {
        Self::Empty {
            figure: figure_name(figure),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(figure: &str, reason: impl Into<String>) -> Self {
        Self::InvalidData {
            figure: figure_name(figure),
            reason: reason.into(),
        }
    }
}

fn figure_name(title: &str) -> String {
    if title.is_empty() {
        "(untitled)".to_string()
    } else {
        title.to_string()
    }
}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for PlotError
{
    fn from(e: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        Self::Render(e.to_string())
    }
}
