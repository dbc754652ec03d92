//! The A4 tax invoice. Each invoice starts on a new page; a long line table continues on
//! following pages under a repeated header, and the totals close the last page.

use crate::canvas::{Page, PageSize, mm_to_pt, pt_to_mm};
use crate::format::{format_money, format_tax_rate};
use crate::text::{self, Font};
use crate::{Invoice, InvoiceLine, Party};

const MARGIN: f32 = 12.0;
const RIGHT: f32 = 210.0 - MARGIN;
const CONTENT_WIDTH: f32 = RIGHT - MARGIN;
/// Rows and totals stay above this; the footer lives below it.
const CONTENT_BOTTOM: f32 = 280.0;
const FOOTER_BASELINE: f32 = 289.0;

const CELL_SIZE: f32 = 8.0;
const CELL_LINE: f32 = 3.4;
const CELL_PAD_X: f32 = 1.0;
const CELL_PAD_TOP: f32 = 1.2;
const CELL_PAD_BOTTOM: f32 = 1.0;
/// Baseline of a cell's first line below the row's top.
const CELL_BASELINE: f32 = CELL_PAD_TOP + 2.3;
/// Figures shrink down to this before they are truncated.
const MIN_FIGURE_SIZE: f32 = 4.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// How a column's content is laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Wrapped over at most this many lines.
    Wrap(usize),
    /// One line; the font shrinks to fit (figures must not be cut).
    Fit,
}

pub(crate) struct Column {
    title: &'static str,
    pub(crate) width: f32,
    align: Align,
    fill: Fill,
}

/// The line table, left to right; widths add up to `CONTENT_WIDTH`.
pub(crate) const COLUMNS: [Column; 10] = [
    col("#", 7.0, Align::Right, Fill::Fit),
    col("SKU", 28.0, Align::Left, Fill::Wrap(3)),
    col("Description", 45.0, Align::Left, Fill::Wrap(4)),
    col("HSN", 14.0, Align::Left, Fill::Wrap(2)),
    col("Qty", 10.0, Align::Right, Fill::Fit),
    col("Unit price", 17.0, Align::Right, Fill::Fit),
    col("Tax %", 11.0, Align::Right, Fill::Fit),
    col("Taxable", 18.0, Align::Right, Fill::Fit),
    col("Tax", 16.0, Align::Right, Fill::Fit),
    col("Total", 20.0, Align::Right, Fill::Fit),
];

const fn col(title: &'static str, width: f32, align: Align, fill: Fill) -> Column {
    Column {
        title,
        width,
        align,
        fill,
    }
}

/// Left edge of column `i`.
pub(crate) fn column_x(i: usize) -> f32 {
    MARGIN + COLUMNS[..i].iter().map(|c| c.width).sum::<f32>()
}

/// One table row, laid out: each cell's lines and font size.
struct Row {
    cells: Vec<(Vec<String>, f32)>,
    height: f32,
}

fn layout_row(values: [String; 10], font: Font) -> Row {
    let cells: Vec<(Vec<String>, f32)> = COLUMNS
        .iter()
        .zip(values)
        .map(|(col, value)| {
            let inner = mm_to_pt(col.width - 2.0 * CELL_PAD_X);
            match col.fill {
                Fill::Wrap(max) => (text::wrap(font, CELL_SIZE, inner, max, &value), CELL_SIZE),
                Fill::Fit => {
                    let (s, size) = text::fit(font, CELL_SIZE, MIN_FIGURE_SIZE, inner, &value);
                    (vec![s], size)
                }
            }
        })
        .collect();
    let lines = cells.iter().map(|(l, _)| l.len()).max().unwrap_or(1).max(1);
    Row {
        cells,
        height: CELL_PAD_TOP + lines as f32 * CELL_LINE + CELL_PAD_BOTTOM,
    }
}

fn line_row(index: usize, line: &InvoiceLine) -> Row {
    layout_row(
        [
            (index + 1).to_string(),
            line.sku.clone(),
            line.name.clone(),
            line.hsn.clone().unwrap_or_default(),
            line.qty.to_string(),
            format_money(line.unit_price_minor),
            format_tax_rate(line.tax_rate_bp),
            format_money(line.taxable_minor),
            format_money(line.tax_minor),
            format_money(line.total_minor),
        ],
        Font::Regular,
    )
}

fn header_row() -> Row {
    layout_row(COLUMNS.map(|c| c.title.to_string()), Font::Bold)
}

fn draw_row(page: &mut Page, top: f32, row: &Row, font: Font) {
    for (i, (col, (lines, size))) in COLUMNS.iter().zip(&row.cells).enumerate() {
        let x = column_x(i);
        for (j, line) in lines.iter().enumerate() {
            let baseline = top + CELL_BASELINE + j as f32 * CELL_LINE;
            match col.align {
                Align::Left => page.text(x + CELL_PAD_X, baseline, font, *size, line),
                Align::Right => {
                    page.text_right(x + col.width - CELL_PAD_X, baseline, font, *size, line)
                }
            }
        }
    }
}

/// Draws the table header at `top`; returns where the first row goes.
fn draw_table_header(page: &mut Page, top: f32) -> f32 {
    let row = header_row();
    page.fill_rect(MARGIN, top, CONTENT_WIDTH, row.height, 0.88);
    draw_row(page, top, &row, Font::Bold);
    top + row.height
}

/// A label in bold and its value in regular type after it, cut to the space left.
fn key_value(
    page: &mut Page,
    x: f32,
    value_x: f32,
    right: f32,
    baseline: f32,
    key: &str,
    value: &str,
) {
    const SIZE: f32 = 9.0;
    page.text(x, baseline, Font::Bold, SIZE, key);
    let max = mm_to_pt(right - value_x);
    page.text(
        value_x,
        baseline,
        Font::Regular,
        SIZE,
        &text::truncate(Font::Regular, SIZE, max, value),
    );
}

/// Title and invoice particulars at the top of an invoice's first page.
fn draw_first_header(page: &mut Page, inv: &Invoice) -> f32 {
    page.text(MARGIN, 20.0, Font::Bold, 18.0, "TAX INVOICE");
    let rows = [
        ("Invoice no:", inv.number.clone()),
        ("Date:", inv.issued_on.clone()),
        ("Order:", inv.order_code.clone()),
        ("Channel:", inv.channel.clone()),
        ("Shipment:", inv.shipment_id.to_string()),
    ];
    for (i, (key, value)) in rows.iter().enumerate() {
        key_value(page, 118.0, 140.0, RIGHT, 14.0 + i as f32 * 4.3, key, value);
    }
    page.rule(MARGIN, 37.0, CONTENT_WIDTH, 0.3, 0.0);

    const GAP: f32 = 6.0;
    let width = (CONTENT_WIDTH - 2.0 * GAP) / 3.0;
    let blocks = [
        ("SELLER", &inv.seller),
        ("SHIP FROM", &inv.ship_from),
        ("BILL TO / SHIP TO", &inv.bill_to),
    ];
    let bottom = blocks
        .iter()
        .enumerate()
        .map(|(i, (heading, party))| {
            draw_party(
                page,
                MARGIN + i as f32 * (width + GAP),
                41.0,
                width,
                heading,
                party,
            )
        })
        .fold(41.0, f32::max);
    bottom + 3.0
}

/// A party's name, address and particulars in a column; returns the block's bottom.
/// Line counts are capped so even a pathological address leaves room for the table.
fn draw_party(page: &mut Page, x: f32, top: f32, width: f32, heading: &str, party: &Party) -> f32 {
    const SIZE: f32 = 8.5;
    const LINE: f32 = 3.6;
    let max = mm_to_pt(width);
    let mut y = top + 3.0;
    page.text(x, y, Font::Bold, 7.5, heading);
    y += 4.2;
    for line in text::wrap(Font::Bold, 9.0, max, 2, &party.name) {
        page.text(x, y, Font::Bold, 9.0, &line);
        y += 3.9;
    }
    let address = party.address.as_deref().unwrap_or_default();
    for line in text::wrap(Font::Regular, SIZE, max, 6, address) {
        page.text(x, y, Font::Regular, SIZE, &line);
        y += LINE;
    }
    let fields = [
        ("PIN: ", &party.pincode),
        ("GSTIN: ", &party.gstin),
        ("Phone: ", &party.phone),
        ("Email: ", &party.email),
    ];
    for (key, value) in fields {
        let value = text::sanitize(value.as_deref().unwrap_or_default());
        if value.is_empty() {
            continue;
        }
        page.text(
            x,
            y,
            Font::Regular,
            SIZE,
            &text::truncate(Font::Regular, SIZE, max, &format!("{key}{value}")),
        );
        y += LINE;
    }
    y - LINE + 1.5
}

/// The compact header of a continuation page.
fn draw_continued_header(page: &mut Page, inv: &Invoice) -> f32 {
    page.text(MARGIN, 18.0, Font::Bold, 12.0, "TAX INVOICE (continued)");
    let left = MARGIN + pt_to_mm(text::width(Font::Bold, 12.0, "TAX INVOICE (continued)")) + 6.0;
    let particulars = format!(
        "Invoice no: {}   Order: {}",
        text::sanitize(&inv.number),
        text::sanitize(&inv.order_code)
    );
    let max = mm_to_pt(RIGHT - left);
    page.text_right(
        RIGHT,
        18.0,
        Font::Regular,
        9.0,
        &text::truncate(Font::Regular, 9.0, max, &particulars),
    );
    page.rule(MARGIN, 21.0, CONTENT_WIDTH, 0.3, 0.0);
    25.0
}

const TOTALS_HEIGHT: f32 = 20.0;

fn draw_totals(page: &mut Page, top: f32, inv: &Invoice) {
    const LABEL_X: f32 = 120.0;
    const VALUE_X: f32 = 145.0;
    let currency = text::truncate(Font::Regular, 9.0, mm_to_pt(20.0), &inv.currency);
    let amount = |minor: i64| {
        if currency.is_empty() {
            format_money(minor)
        } else {
            format!("{currency} {}", format_money(minor))
        }
    };
    let max = mm_to_pt(RIGHT - VALUE_X);
    let rows = [
        ("Taxable", inv.taxable_minor, Font::Regular, 9.0, 5.0),
        ("Tax", inv.tax_minor, Font::Regular, 9.0, 5.0),
        ("Total", inv.total_minor, Font::Bold, 11.0, 6.5),
    ];
    let mut y = top;
    for (label, minor, font, size, step) in rows {
        if label == "Total" {
            page.rule(LABEL_X, y + 2.0, RIGHT - LABEL_X, 0.3, 0.0);
        }
        y += step;
        page.text(LABEL_X, y, font, size, label);
        let (value, size) = text::fit(font, size, MIN_FIGURE_SIZE, max, &amount(minor));
        page.text_right(RIGHT, y, font, size, &value);
    }
}

fn draw_footer(page: &mut Page, inv: &Invoice, number: usize, of: usize) {
    let id = text::truncate(Font::Regular, 8.0, mm_to_pt(70.0), &inv.number);
    page.text(MARGIN, FOOTER_BASELINE, Font::Regular, 8.0, &id);
    if number < of {
        page.text_center(
            105.0,
            FOOTER_BASELINE,
            Font::Regular,
            8.0,
            "Continued on next page",
        );
    }
    page.text_right(
        RIGHT,
        FOOTER_BASELINE,
        Font::Regular,
        8.0,
        &format!("Page {number} of {of}"),
    );
}

/// The pages of one invoice.
pub(crate) fn render(inv: &Invoice) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut page = Page::new(PageSize::A4);
    let top = draw_first_header(&mut page, inv);
    let mut y = draw_table_header(&mut page, top);

    for (i, line) in inv.lines.iter().enumerate() {
        let row = line_row(i, line);
        if y + row.height > CONTENT_BOTTOM {
            pages.push(std::mem::replace(&mut page, Page::new(PageSize::A4)));
            let top = draw_continued_header(&mut page, inv);
            y = draw_table_header(&mut page, top);
        }
        draw_row(&mut page, y, &row, Font::Regular);
        y += row.height;
        page.rule(MARGIN, y, CONTENT_WIDTH, 0.1, 0.6);
    }
    if inv.lines.is_empty() {
        page.text(
            MARGIN + CELL_PAD_X,
            y + CELL_BASELINE,
            Font::Regular,
            CELL_SIZE,
            "No lines",
        );
        y += CELL_PAD_TOP + CELL_LINE + CELL_PAD_BOTTOM;
    }

    y += 3.0;
    if y + TOTALS_HEIGHT > CONTENT_BOTTOM {
        pages.push(std::mem::replace(&mut page, Page::new(PageSize::A4)));
        y = draw_continued_header(&mut page, inv);
    }
    draw_totals(&mut page, y, inv);
    pages.push(page);

    let of = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        draw_footer(page, inv, i + 1, of);
    }
    pages
}
