//! The 4 × 6 inch shipping label: carrier, AWB barcode, addressee in large type, parcel
//! particulars, sender. Every block caps its line count, so the label always fits one page.

use crate::barcode::code128_modules;
use crate::canvas::{Page, PageSize, mm_to_pt, pt_to_mm};
use crate::format::format_weight;
use crate::text::{self, Font};
use crate::{Label, Party};

const MARGIN: f32 = 4.0;

/// Preferred bar module width: 3 dots on a 203 dpi thermal printer, the usual 4×6 printer.
const MODULE_MM: f32 = 0.375;
/// Light margin required on either side of the bars, in modules.
const QUIET_MODULES: usize = 10;
/// Quiet zones may extend into the page margin, but not right to the paper's edge.
const BARCODE_EDGE_MM: f32 = 1.5;
const BARCODE_TOP: f32 = 17.0;
const BARCODE_HEIGHT: f32 = 22.0;

/// The module width for a barcode of `modules` modules on a page `page_width` wide.
pub(crate) fn module_width(modules: usize, page_width: f32) -> f32 {
    let available = page_width - 2.0 * BARCODE_EDGE_MM;
    let total = (modules + 2 * QUIET_MODULES) as f32;
    // Long AWBs shrink the module rather than run off the label.
    MODULE_MM.min(available / total)
}

/// Draws the bars, centred; each run of dark modules becomes one filled rectangle so
/// adjacent modules cannot show hairline gaps.
fn draw_barcode(page: &mut Page, modules: &[bool]) {
    let module = module_width(modules.len(), page.width_mm());
    let x0 = (page.width_mm() - modules.len() as f32 * module) / 2.0;
    let mut i = 0;
    while i < modules.len() {
        if !modules[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < modules.len() && modules[i] {
            i += 1;
        }
        page.fill_rect(
            x0 + start as f32 * module,
            BARCODE_TOP,
            (i - start) as f32 * module,
            BARCODE_HEIGHT,
            0.0,
        );
    }
}

/// Lays out text lines top to bottom from a running baseline.
struct Flow<'a> {
    page: &'a mut Page,
    x: f32,
    width: f32,
    y: f32,
}

impl Flow<'_> {
    fn max_pt(&self) -> f32 {
        mm_to_pt(self.width)
    }

    fn line(&mut self, font: Font, size: f32, step: f32, s: &str) {
        self.y += step;
        let s = text::truncate(font, size, self.max_pt(), s);
        self.page.text(self.x, self.y, font, size, &s);
    }

    fn wrapped(&mut self, font: Font, size: f32, step: f32, max_lines: usize, s: &str) {
        for line in text::wrap(font, size, self.max_pt(), max_lines, s) {
            self.y += step;
            self.page.text(self.x, self.y, font, size, &line);
        }
    }

    /// `key` + value on one line, skipped when the value is absent or blank.
    fn field(&mut self, font: Font, size: f32, step: f32, key: &str, value: Option<&str>) {
        let value = text::sanitize(value.unwrap_or_default());
        if !value.is_empty() {
            self.line(font, size, step, &format!("{key}{value}"));
        }
    }

    fn rule(&mut self, gap_before: f32, gap_after: f32) {
        self.y += gap_before;
        let width = self.page.width_mm() - 2.0 * MARGIN;
        self.page.rule(MARGIN, self.y, width, 0.4, 0.0);
        self.y += gap_after;
    }
}

fn ship_to(flow: &mut Flow, party: &Party) {
    flow.line(Font::Bold, 8.0, 3.0, "SHIP TO");
    flow.wrapped(Font::Bold, 14.0, 5.8, 2, &party.name);
    flow.wrapped(
        Font::Regular,
        11.0,
        4.6,
        5,
        party.address.as_deref().unwrap_or_default(),
    );
    flow.field(Font::Bold, 14.0, 5.8, "PIN ", party.pincode.as_deref());
    flow.field(Font::Regular, 11.0, 4.6, "Phone: ", party.phone.as_deref());
}

fn ship_from(flow: &mut Flow, party: &Party) {
    flow.line(Font::Bold, 7.0, 2.6, "FROM");
    flow.wrapped(Font::Bold, 8.5, 3.5, 1, &party.name);
    flow.wrapped(
        Font::Regular,
        8.0,
        3.3,
        3,
        party.address.as_deref().unwrap_or_default(),
    );
    flow.field(Font::Regular, 8.0, 3.3, "PIN ", party.pincode.as_deref());
    flow.field(Font::Regular, 8.0, 3.3, "Phone: ", party.phone.as_deref());
    flow.field(Font::Regular, 8.0, 3.3, "GSTIN: ", party.gstin.as_deref());
}

/// Two `key: value` pairs side by side, each cut to half the width.
fn pair_row(flow: &mut Flow, left: &str, right: &str) {
    const SIZE: f32 = 10.0;
    flow.y += 4.6;
    let half = flow.width / 2.0;
    let max = mm_to_pt(half - 2.0);
    let y = flow.y;
    flow.page.text(
        flow.x,
        y,
        Font::Regular,
        SIZE,
        &text::truncate(Font::Regular, SIZE, max, left),
    );
    flow.page.text(
        flow.x + half,
        y,
        Font::Regular,
        SIZE,
        &text::truncate(Font::Regular, SIZE, max, right),
    );
}

pub(crate) fn render(label: &Label) -> Page {
    let mut page = Page::new(PageSize::LABEL_4X6);
    let width = page.width_mm() - 2.0 * MARGIN;
    let max = mm_to_pt(width);

    // Carrier: as large as fits, down to 12 pt, then cut.
    let (carrier, size) = text::fit(Font::Bold, 22.0, 12.0, max, &label.carrier);
    page.text(MARGIN, 11.5, Font::Bold, size, &carrier);
    page.rule(MARGIN, 14.0, width, 0.4, 0.0);

    match code128_modules(&label.awb) {
        Some(modules) => draw_barcode(&mut page, &modules),
        None => {
            let note = "NO BARCODE: AWB is empty or not plain ASCII";
            page.text_center(
                page.width_mm() / 2.0,
                BARCODE_TOP + BARCODE_HEIGHT / 2.0,
                Font::Bold,
                10.0,
                note,
            );
        }
    }

    // The AWB in text under the bars, for when the barcode will not scan.
    let (awb, awb_size) = text::fit(Font::Bold, 13.0, 9.0, max, &label.awb);
    let awb_lines = if awb != text::sanitize(&label.awb) {
        // Too long even at 9 pt, so `fit` cut it: wrap instead of losing characters.
        text::wrap(Font::Bold, 9.0, max, 3, &label.awb)
    } else {
        vec![awb]
    };
    let mut y = BARCODE_TOP + BARCODE_HEIGHT + 1.0;
    let center = page.width_mm() / 2.0;
    for line in &awb_lines {
        y += text_step(awb_size);
        page.text_center(center, y, Font::Bold, awb_size, line);
    }

    let mut flow = Flow {
        page: &mut page,
        x: MARGIN,
        width,
        y,
    };
    flow.rule(2.0, 1.5);
    ship_to(&mut flow, &label.ship_to);
    flow.rule(2.0, 0.5);
    pair_row(
        &mut flow,
        &format!("Order: {}", text::sanitize(&label.order_code)),
        &format!("Shipment: {}", label.shipment_id),
    );
    let weight = label
        .weight_grams
        .map(|g| format!("Weight: {}", format_weight(g)))
        .unwrap_or_default();
    pair_row(&mut flow, &format!("Units: {}", label.units), &weight);
    flow.rule(2.0, 1.0);
    ship_from(&mut flow, &label.ship_from);
    page
}

/// Baseline-to-baseline distance for a font size, in mm.
fn text_step(size: f32) -> f32 {
    pt_to_mm(size) * 1.2
}
