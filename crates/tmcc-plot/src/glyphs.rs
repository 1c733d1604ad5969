//! A bitmap-backend wrapper that draws text with correct glyph spacing.
//!
//! plotters 0.3.7's ab_glyph text renderer ignores each glyph's left side
//! bearing, so bitmap text is unevenly spaced ("ou tput", "1 28"). `GlyphFix`
//! forwards everything to the wrapped backend except `draw_text`, which it
//! rasterises itself with the same embedded font. Text sizes still come from
//! plotters, so layout is unchanged; SVG output (real `<text>`) needs no fix.

use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::DrawingErrorKind;
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle};

use ab_glyph::{point, Font, FontRef, ScaleFont};

use crate::font;

type Res<B> = Result<(), DrawingErrorKind<<B as DrawingBackend>::ErrorType>>;

pub(crate) struct GlyphFix<B>(pub(crate) B);

impl<B: DrawingBackend> DrawingBackend for GlyphFix<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Res<B> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Res<B> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Res<B> {
        self.0.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(&mut self, a: BackendCoord, b: BackendCoord, s: &S) -> Res<B> {
        self.0.draw_line(a, b, s)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Res<B> {
        self.0.draw_rect(a, b, s, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Res<B> {
        self.0.draw_path(path, s)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        c: BackendCoord,
        r: u32,
        s: &S,
        fill: bool,
    ) -> Res<B> {
        self.0.draw_circle(c, r, s, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        s: &S,
    ) -> Res<B> {
        self.0.fill_polygon(vert, s)
    }
    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Res<B> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// Same anchoring and rotation as plotters' default `draw_text`; only
    /// the per-glyph placement differs.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Res<B> {
        let Some(font) = font::glyph_font() else {
            return self.0.draw_text(text, style, pos);
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut result = Ok(());
        rasterize(font, style.size() as f32, text, |x, y, coverage| {
            let (x, y) = trans.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if result.is_ok() && x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let alpha = color.alpha * f64::from(coverage.clamp(0.0, 1.0));
                result = self.0.draw_pixel(
                    (x, y),
                    BackendColor {
                        alpha,
                        rgb: color.rgb,
                    },
                );
            }
        });
        result
    }
}

/// Calls `put(x, y, coverage)` for each pixel of `text` laid out from the
/// origin, with the baseline at `size / 2` as plotters' renderer places it.
fn rasterize(font: &FontRef<'static>, size: f32, text: &str, mut put: impl FnMut(i32, i32, f32)) {
    let scaled = font.as_scaled(size);
    let mut caret = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(prev) = prev {
            caret += scaled.kern(prev, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(size, point(caret, 0.0));
        caret += scaled.h_advance(id);
        if let Some(outline) = scaled.outline_glyph(glyph) {
            let b = outline.px_bounds();
            let (x0, y0) = (b.min.x as i32, (size / 2.0 + b.min.y) as i32);
            outline.draw(|x, y, cov| put(x0 + x as i32, y0 + y as i32, cov));
        }
    }
}
