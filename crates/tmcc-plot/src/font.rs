//! Registers the embedded DejaVu Sans font as plotters' "sans-serif" family.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use ab_glyph::FontRef;

use plotters::style::{register_font, FontStyle};

use crate::PlotError;

/// The family name every text style in this crate uses.
pub(crate) const FAMILY: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers the font on first use; cheap afterwards.
pub(crate) fn ensure_registered() -> Result<(), PlotError> {
    REGISTER.call_once(|| {
        let ok = register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok();
        REGISTERED.store(ok, Ordering::Release);
    });
    if REGISTERED.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

/// The embedded font for `glyphs`' own rasteriser (`None` if it won't parse).
pub(crate) fn glyph_font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}
