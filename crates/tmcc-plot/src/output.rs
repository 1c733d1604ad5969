//! Turns a figure into bytes (PNG or SVG) and writes them atomically.

use std::fs;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::glyphs::GlyphFix;
use crate::{font, PlotError};

/// A validated figure that can draw itself on any plotters backend.
pub(crate) trait Figure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), PlotError>;
}

/// Renders `fig` at `size` pixels and writes it to `path` (SVG if the path
/// ends in `.svg`, PNG otherwise) via `<path>.tmp` and a rename.
pub(crate) fn render<F: Figure>(path: &Path, size: (u32, u32), fig: &F) -> Result<(), PlotError> {
    font::ensure_registered()?;
    // plotters can panic on odd geometry; a panic must not escape as a crash.
    let bytes = catch_unwind(AssertUnwindSafe(|| {
        if is_svg(path) {
            render_svg(size, fig)
        } else {
            render_png(size, fig)
        }
    }))
    .unwrap_or_else(|_| Err(PlotError::Render("plotters panicked".into())))?;
    write_atomic(path, &bytes)
}

fn is_svg(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
}

fn render_svg<F: Figure>(size: (u32, u32), fig: &F) -> Result<Vec<u8>, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        fig.draw(&root)?;
        root.present()?;
    }
    Ok(svg.into_bytes())
}

fn render_png<F: Figure>(size: (u32, u32), fig: &F) -> Result<Vec<u8>, PlotError> {
    let (w, h) = size;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = GlyphFix(BitMapBackend::with_buffer(&mut rgb, size)).into_drawing_area();
        root.fill(&WHITE)?;
        fig.draw(&root)?;
        root.present()?;
    }
    encode_png(&rgb, size).map_err(|e| PlotError::Encode(e.to_string()))
}

fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// `<path>.tmp`, in the same directory as `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let tmp = tmp_path(path);
    let io_err = |source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err)?;
    }
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(io_err(e))
        }
    }
}
