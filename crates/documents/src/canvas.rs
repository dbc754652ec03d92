//! A thin drawing surface over printpdf: layout code works in millimetres measured from the
//! top-left corner, this converts to PDF points measured from the bottom-left.

use printpdf::{
    BuiltinFont, Color, Greyscale, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Pt, Rect, TextItem, TextMatrix,
};

use crate::text::{self, Font};

const PT_PER_MM: f32 = 72.0 / 25.4;

pub(crate) fn mm_to_pt(mm: f32) -> f32 {
    mm * PT_PER_MM
}

pub(crate) fn pt_to_mm(pt: f32) -> f32 {
    pt / PT_PER_MM
}

/// A page size, kept in points so the media box comes out exact (288 × 432 for a label)
/// rather than whatever a millimetre round trip through `f32` gives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSize {
    pub width_pt: f32,
    pub height_pt: f32,
}

impl PageSize {
    pub const A4: PageSize = PageSize {
        width_pt: 595.276,
        height_pt: 841.89,
    };
    /// 4 × 6 inch, portrait.
    pub const LABEL_4X6: PageSize = PageSize {
        width_pt: 288.0,
        height_pt: 432.0,
    };
}

/// One page being drawn. Shapes and text are kept apart because PDF forbids path operators
/// inside a text object: shapes are emitted first, then all text in a single BT/ET.
pub(crate) struct Page {
    size: PageSize,
    shapes: Vec<Op>,
    text: Vec<Op>,
    fill_grey: Option<f32>,
    font: Option<(Font, f32)>,
}

fn builtin(font: Font) -> PdfFontHandle {
    PdfFontHandle::Builtin(match font {
        Font::Regular => BuiltinFont::Helvetica,
        Font::Bold => BuiltinFont::HelveticaBold,
    })
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale {
        percent: level.clamp(0.0, 1.0),
        icc_profile: None,
    })
}

impl Page {
    pub fn new(size: PageSize) -> Self {
        Page {
            size,
            shapes: Vec::new(),
            text: Vec::new(),
            fill_grey: None,
            font: None,
        }
    }

    pub fn width_mm(&self) -> f32 {
        pt_to_mm(self.size.width_pt)
    }

    /// Text with its left end at `x` and its baseline `baseline` mm from the top. The text
    /// is sanitised here too, so no caller can hand the font a char it cannot encode.
    pub fn text(&mut self, x: f32, baseline: f32, font: Font, size: f32, s: &str) {
        let s = text::sanitize(s);
        if s.is_empty() || !(x.is_finite() && baseline.is_finite() && size > 0.0) {
            return;
        }
        if self.font != Some((font, size)) {
            self.text.push(Op::SetFont {
                font: builtin(font),
                size: Pt(size),
            });
            self.font = Some((font, size));
        }
        // An absolute text matrix (Tm), not `SetTextCursor`: printpdf writes the latter as
        // `Td`, which moves relative to the previous line within one text object.
        self.text.push(Op::SetTextMatrix {
            matrix: TextMatrix::Translate(
                Pt(mm_to_pt(x)),
                Pt(self.size.height_pt - mm_to_pt(baseline)),
            ),
        });
        self.text.push(Op::ShowText {
            items: vec![TextItem::Text(s)],
        });
    }

    /// Text whose right end is at `right`.
    pub fn text_right(&mut self, right: f32, baseline: f32, font: Font, size: f32, s: &str) {
        let s = text::sanitize(s);
        let w = pt_to_mm(text::width(font, size, &s));
        self.text(right - w, baseline, font, size, &s);
    }

    /// Text centred on `center`.
    pub fn text_center(&mut self, center: f32, baseline: f32, font: Font, size: f32, s: &str) {
        let s = text::sanitize(s);
        let w = pt_to_mm(text::width(font, size, &s));
        self.text(center - w / 2.0, baseline, font, size, &s);
    }

    /// A filled rectangle with its top-left corner at (`x`, `top`); `level` 0 is black.
    pub fn fill_rect(&mut self, x: f32, top: f32, width: f32, height: f32, level: f32) {
        if self.fill_grey != Some(level) {
            self.shapes.push(Op::SetFillColor { col: grey(level) });
            self.fill_grey = Some(level);
        }
        let mut rect = Rect::from_xywh(
            Pt(mm_to_pt(x)),
            Pt(self.size.height_pt - mm_to_pt(top + height)),
            Pt(mm_to_pt(width)),
            Pt(mm_to_pt(height)),
        );
        rect.mode = Some(PaintMode::Fill);
        self.shapes.push(Op::DrawRectangle { rectangle: rect });
    }

    /// A horizontal rule, drawn as a thin filled rectangle (no stroke state to manage).
    pub fn rule(&mut self, x: f32, y: f32, width: f32, thickness: f32, level: f32) {
        self.fill_rect(x, y - thickness / 2.0, width, thickness, level);
    }

    fn into_pdf_page(self) -> PdfPage {
        let mut ops = self.shapes;
        if !self.text.is_empty() {
            // Text is always black, whatever grey the last shape left behind.
            ops.push(Op::SetFillColor { col: grey(0.0) });
            ops.push(Op::StartTextSection);
            ops.extend(self.text);
            ops.push(Op::EndTextSection);
        }
        let (w, h) = (self.size.width_pt, self.size.height_pt);
        let mut page = PdfPage::new(Mm::from(Pt(w)), Mm::from(Pt(h)), ops);
        page.media_box = Rect::from_wh(Pt(w), Pt(h));
        page.trim_box = page.media_box.clone();
        page.crop_box = page.media_box.clone();
        page
    }
}

/// Serialises pages into one PDF. An empty list still yields a valid file: one blank page
/// of `blank`, since a PDF without pages upsets viewers and printers.
pub(crate) fn to_pdf(title: &str, pages: Vec<Page>, blank: PageSize) -> Vec<u8> {
    let mut pages: Vec<PdfPage> = pages.into_iter().map(Page::into_pdf_page).collect();
    if pages.is_empty() {
        pages.push(Page::new(blank).into_pdf_page());
    }
    // printpdf reports problems as warnings rather than failing; everything we emit is
    // plain builtin-font text and rectangles, so there is nothing actionable in them.
    let mut warnings = Vec::new();
    PdfDocument::new(title)
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings)
}
