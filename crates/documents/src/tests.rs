//! End-to-end checks: render, then read the PDF back the way a user's tools would, with
//! poppler (pdfinfo, pdftotext, pdftoppm) and zbar (zbarimg). The tools are required: a
//! missing one fails the test with an install hint rather than skipping it.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::canvas::mm_to_pt;
use crate::invoice::{COLUMNS, column_x};
use crate::{Invoice, InvoiceLine, Label, Party, invoices, labels};

const INSTALL_HINT: &str =
    "install poppler-utils and zbar-tools: apt-get install -y poppler-utils zbar-tools";

/// Runs a tool; a tool that is not installed fails the test with the install hint.
fn output(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed; {INSTALL_HINT}")
        }
        Err(e) => panic!("could not run `{program}`: {e}"),
    }
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A rendered PDF in a scratch directory of its own, removed on drop.
struct Pdf {
    dir: PathBuf,
    file: PathBuf,
}

impl Drop for Pdf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A word as `pdftotext -bbox` places it, in points from the page's top-left.
#[derive(Debug)]
struct Word {
    page: usize,
    text: String,
    x_min: f32,
    y_min: f32,
    x_max: f32,
    y_max: f32,
}

fn attr(tag: &str, name: &str) -> f32 {
    let start = tag.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
    let len = tag[start..].find('"').expect("closing quote");
    tag[start..start + len].parse().expect("number")
}

impl Pdf {
    fn new(name: &str, bytes: &[u8]) -> Pdf {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oms-documents-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let file = dir.join(format!("{name}.pdf"));
        std::fs::write(&file, bytes).expect("write pdf");
        Pdf { dir, file }
    }

    fn info(&self) -> String {
        stdout_of(Command::new("pdfinfo").arg(&self.file))
    }

    fn page_count(&self) -> usize {
        let info = self.info();
        let line = info
            .lines()
            .find(|l| l.starts_with("Pages:"))
            .expect("pdfinfo reports pages");
        line["Pages:".len()..].trim().parse().expect("page count")
    }

    fn text(&self) -> String {
        stdout_of(
            Command::new("pdftotext")
                .arg("-layout")
                .arg(&self.file)
                .arg("-"),
        )
    }

    /// The text of each page (pdftotext ends every page with a form feed).
    fn page_texts(&self) -> Vec<String> {
        let text = self.text();
        let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
        pages.pop();
        pages
    }

    fn words(&self) -> Vec<Word> {
        let html = stdout_of(
            Command::new("pdftotext")
                .arg("-bbox")
                .arg(&self.file)
                .arg("-"),
        );
        let mut words = Vec::new();
        let mut page = 0;
        for line in html.lines().map(str::trim) {
            if line.starts_with("<page ") {
                page += 1;
            } else if let Some(rest) = line.strip_prefix("<word ") {
                let (tag, text) = rest.split_once('>').expect("word tag");
                words.push(Word {
                    page,
                    text: text.trim_end_matches("</word>").to_string(),
                    x_min: attr(tag, "xMin"),
                    y_min: attr(tag, "yMin"),
                    x_max: attr(tag, "xMax"),
                    y_max: attr(tag, "yMax"),
                });
            }
        }
        words
    }

    /// What zbar reads off each page rasterised at `dpi`.
    fn barcodes(&self, dpi: u32) -> Vec<Vec<String>> {
        let stem = format!("page-{dpi}dpi");
        let prefix = self.dir.join(&stem);
        stdout_of(
            Command::new("pdftoppm")
                .args(["-r", &dpi.to_string(), "-png"])
                .arg(&self.file)
                .arg(&prefix),
        );
        let mut pngs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("scratch dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                let name = p.file_name().and_then(OsStr::to_str).unwrap_or_default();
                name.starts_with(&stem) && name.ends_with(".png")
            })
            .collect();
        // pdftoppm zero-pads page numbers to a common width, so names sort in page order.
        pngs.sort();
        pngs.iter()
            .map(|png| {
                let out = output(Command::new("zbarimg").args(["--raw", "-q"]).arg(png));
                // zbarimg exits 4 when the image holds no barcode; anything else is an error.
                assert!(
                    out.status.success() || out.status.code() == Some(4),
                    "zbarimg failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }
}

fn party(name: &str, pincode: &str) -> Party {
    Party {
        name: name.to_string(),
        address: Some("12, 4th Cross, Indiranagar\nBengaluru, Karnataka".to_string()),
        pincode: Some(pincode.to_string()),
        gstin: Some("29ABCDE1234F1Z5".to_string()),
        phone: Some("+91 98450 12345".to_string()),
        email: Some("someone@example.com".to_string()),
    }
}

/// An invoice of `lines` identical lines at 1000.00 + 18% tax each.
fn invoice(number: &str, lines: usize) -> Invoice {
    let lines: Vec<InvoiceLine> = (1..=lines)
        .map(|i| InvoiceLine {
            sku: format!("SKU-{i:04}"),
            name: format!("Cotton kurta, indigo, size M, item {i}"),
            hsn: Some("6109".to_string()),
            qty: 1,
            unit_price_minor: 118_000,
            tax_rate_bp: 1800,
            taxable_minor: 100_000,
            tax_minor: 18_000,
            total_minor: 118_000,
        })
        .collect();
    let n = lines.len() as i64;
    Invoice {
        number: number.to_string(),
        issued_on: "2026-11-28".to_string(),
        order_code: format!("ORD-{number}"),
        channel: "shopify".to_string(),
        shipment_id: 4242,
        currency: "INR".to_string(),
        seller: party("Acme Apparel Pvt Ltd", "560038"),
        ship_from: party("Acme Warehouse Hoskote", "562114"),
        bill_to: party("Priya Raman", "600020"),
        lines,
        taxable_minor: 100_000 * n,
        tax_minor: 18_000 * n,
        total_minor: 118_000 * n,
    }
}

fn label(awb: &str) -> Label {
    Label {
        awb: awb.to_string(),
        carrier: "Delhivery".to_string(),
        order_code: "ORD-1001".to_string(),
        shipment_id: 4242,
        ship_to: party("Priya Raman", "600020"),
        ship_from: party("Acme Warehouse Hoskote", "562114"),
        units: 3,
        weight_grams: Some(1250),
    }
}

#[test]
fn invoice_shows_particulars_lines_and_totals() {
    let pdf = Pdf::new("invoice", &invoices(&[invoice("INV-000042", 2)]));
    assert_eq!(pdf.page_count(), 1);
    let text = pdf.text();
    for expected in [
        "TAX INVOICE",
        "INV-000042",
        "2026-11-28",
        "ORD-INV-000042",
        "shopify",
        "4242",
        "Acme Apparel Pvt Ltd",
        "Acme Warehouse Hoskote",
        "Priya Raman",
        "600020",
        "+91 98450 12345",
        "someone@example.com",
        "29ABCDE1234F1Z5",
        "6109",
        "SKU-0001",
        "SKU-0002",
        "1180.00",
        "18%",
        "INR 2000.00",
        "INR 360.00",
        "INR 2360.00",
        "Page 1 of 1",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    for header in [
        "SKU",
        "Description",
        "HSN",
        "Qty",
        "Unit price",
        "Tax %",
        "Taxable",
    ] {
        assert!(text.contains(header), "column {header:?} missing");
    }
    assert!(!text.contains("continued"));
}

#[test]
fn long_invoice_continues_with_repeated_header_and_totals_last() {
    let pdf = Pdf::new("long", &invoices(&[invoice("INV-000200", 200)]));
    let pages = pdf.page_texts();
    let n = pages.len();
    assert!(n >= 3, "200 lines should take several pages, got {n}");
    assert_eq!(pdf.page_count(), n);

    let all = pages.concat();
    for i in 1..=200 {
        let sku = format!("SKU-{i:04}");
        assert_eq!(
            all.matches(&sku).count(),
            1,
            "{sku} should appear exactly once"
        );
    }
    for (i, page) in pages.iter().enumerate() {
        assert!(
            page.contains("Description") && page.contains("Unit price"),
            "header on page {}",
            i + 1
        );
        assert!(page.contains(&format!("Page {} of {n}", i + 1)));
        assert!(page.contains("INV-000200"));
        let last = i + 1 == n;
        assert_eq!(
            page.contains("Continued on next page"),
            !last,
            "page {}",
            i + 1
        );
        assert_eq!(page.contains("(continued)"), i > 0, "page {}", i + 1);
        assert_eq!(
            page.contains("INR 236000.00"),
            last,
            "total only on the last page"
        );
    }
}

#[test]
fn invoices_each_start_on_their_own_pages() {
    let pdf = Pdf::new(
        "two",
        &invoices(&[invoice("INV-000001", 1), invoice("INV-000002", 60)]),
    );
    let pages = pdf.page_texts();
    assert!(pages.len() >= 3, "one page, then at least two for 60 lines");
    assert!(pages[0].contains("INV-000001") && !pages[0].contains("INV-000002"));
    assert!(pages[0].contains("Page 1 of 1") && pages[0].contains("INR 1180.00"));
    for page in &pages[1..] {
        assert!(page.contains("INV-000002") && !page.contains("INV-000001"));
    }
    assert!(pages[1].contains("TAX INVOICE") && !pages[1].contains("(continued)"));
    assert!(pages[1].contains(&format!("Page 1 of {}", pages.len() - 1)));
}

/// Wrapping relies on estimated glyph widths; poppler measures with the real font metrics,
/// so this checks the estimates keep every word inside its column and the page.
#[test]
fn invoice_text_stays_inside_its_column_and_the_page() {
    let mut inv = invoice("INV-000500", 500);
    let long_address = "Flat 12B, Sunshine Residency, Outer Ring Road ".repeat(220);
    for party in [&mut inv.seller, &mut inv.ship_from, &mut inv.bill_to] {
        party.name = "Wolfeschlegelsteinhausenbergerdorff ".repeat(8);
        party.address = Some(long_address.clone());
        party.email = Some(format!("{}@example.com", "w".repeat(200)));
    }
    inv.number = "W".repeat(120);
    for (i, line) in inv.lines.iter_mut().enumerate() {
        line.sku = "W".repeat(64);
        line.name = "descword WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW ".repeat(12);
        line.hsn = Some("61091000".to_string());
        if i % 2 == 0 {
            line.total_minor = i64::MAX;
            line.qty = i64::MIN;
        }
    }
    inv.total_minor = i64::MIN;

    let pdf = Pdf::new("bounds", &invoices(&[inv]));
    let words = pdf.words();
    assert!(words.len() > 1000);
    let (left, right) = (mm_to_pt(column_x(0)), mm_to_pt(column_x(COLUMNS.len())));
    let slack = 0.5;
    for w in &words {
        assert!(
            w.x_min >= left - slack && w.x_max <= right + slack,
            "word outside the margins: {w:?}"
        );
        assert!(
            w.y_min >= 0.0 && w.y_max <= 841.89,
            "word off the page: {w:?}"
        );
    }
    let (desc_left, desc_right) = (mm_to_pt(column_x(2)), mm_to_pt(column_x(3)));
    let descriptions: Vec<&Word> = words.iter().filter(|w| w.text == "descword").collect();
    assert!(descriptions.len() >= 500);
    for w in descriptions {
        assert!(
            w.x_min >= desc_left && w.x_max <= desc_right,
            "description overflows: {w:?}"
        );
    }
    let pages = words.last().map_or(0, |w| w.page);
    assert!(
        pages > 10,
        "500 four-line rows span many pages, got {pages}"
    );
}

#[test]
fn label_is_4x6_with_a_scannable_awb() {
    let pdf = Pdf::new("label", &labels(&[label("AWB-1234567890X")]));
    let info = pdf.info();
    let size = info.lines().find(|l| l.starts_with("Page size:"));
    assert!(
        size.is_some_and(|l| l.ends_with(" 288 x 432 pts")),
        "{info}"
    );
    assert_eq!(pdf.page_count(), 1);
    assert_eq!(pdf.barcodes(300), vec![vec!["AWB-1234567890X".to_string()]]);
    let text = pdf.text();
    for expected in [
        "Delhivery",
        "AWB-1234567890X",
        "SHIP TO",
        "Priya Raman",
        "600020",
        "+91 98450 12345",
        "ORD-1001",
        "4242",
        "Units: 3",
        "1.250 kg",
        "FROM",
        "Acme Warehouse Hoskote",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[test]
fn numeric_and_long_awbs_decode_one_label_per_page() {
    let forty = "SHP/2026/11/ABCDEFGHIJKLMNOPQRSTUVW-0042";
    assert_eq!(forty.len(), 40);
    let awbs = [
        "123456789012",
        "12345678901",
        "7",
        forty,
        "1234567890123456789012345678901234567890",
    ];
    let pdf = Pdf::new("awbs", &labels(&awbs.map(label)));
    assert_eq!(pdf.page_count(), awbs.len());
    let expected: Vec<Vec<String>> = awbs.iter().map(|a| vec![a.to_string()]).collect();
    assert_eq!(pdf.barcodes(300), expected);
}

/// The longest AWB, all set-B chars, needs the smallest module (about 0.13 mm): too fine
/// for a 300 dpi raster, but it is still a valid symbol that a sharper image reads.
#[test]
fn longest_awb_still_encodes_exactly() {
    let awb = "AWB-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-01/23/";
    assert_eq!(awb.len(), 64);
    let pdf = Pdf::new("awb64", &labels(&[label(awb)]));
    assert_eq!(pdf.barcodes(600), vec![vec![awb.to_string()]]);
}

#[test]
fn totals_that_do_not_fit_move_to_a_continuation_page() {
    // The fewest lines that fill page one exactly: the totals then go on page two.
    let n = (1..100)
        .find(|&n| crate::invoice::render(&invoice("INV-000077", n)).len() == 2)
        .expect("some line count needs two pages");
    let pdf = Pdf::new("totalsonly", &invoices(&[invoice("INV-000077", n)]));
    let pages = pdf.page_texts();
    assert_eq!(pages.len(), 2);
    assert!(pages[0].contains(&format!("SKU-{n:04}")));
    assert!(pages[0].contains("Continued on next page"));
    assert!(
        !pages[1].contains("SKU-"),
        "only the totals move:\n{}",
        pages[1]
    );
    assert!(pages[1].contains("(continued)") && pages[1].contains("Page 2 of 2"));
    assert!(pages[1].contains(&format!("INR {}", crate::format_money(118_000 * n as i64))));
}

#[test]
fn awb_that_code128_cannot_carry_prints_without_a_barcode() {
    let pdf = Pdf::new("nobarcode", &labels(&[label("AWB-李"), label("")]));
    assert_eq!(pdf.barcodes(300), vec![Vec::<String>::new(), Vec::new()]);
    let text = pdf.text();
    assert!(text.contains("AWB-?"));
    assert!(text.contains("NO BARCODE"));
}

#[test]
fn label_text_stays_on_the_page_whatever_the_input() {
    let mut l = label(&"A".repeat(64));
    l.carrier = "Extremely Long Carrier Name Logistics Private Limited".repeat(3);
    l.order_code = "O".repeat(200);
    for party in [&mut l.ship_to, &mut l.ship_from] {
        party.name = "Wolfeschlegelsteinhausenbergerdorff ".repeat(8);
        party.address = Some("Flat 12B, Sunshine Residency ".repeat(350));
        party.phone = Some("9".repeat(100));
        party.gstin = Some("G".repeat(100));
    }
    let pdf = Pdf::new("labelbounds", &labels(&[l]));
    let margin = mm_to_pt(4.0) - 0.5;
    for w in pdf.words() {
        assert!(
            w.x_min >= margin && w.x_max <= 288.0 - margin && w.y_max <= 432.0 - margin,
            "word off the label: {w:?}"
        );
    }
}

#[test]
fn odd_input_renders_a_valid_pdf() {
    let odd = "Ānanya 李 Café Müller \u{0}\u{7}\u{1b}[31m\r\n\t\u{202e}émoji 🚚";
    let odd_party = Party {
        name: odd.to_string(),
        address: Some(format!("{odd}\n\n\n{}", "x".repeat(10_000))),
        pincode: Some(String::new()),
        gstin: Some("\u{0}".to_string()),
        phone: Some(odd.to_string()),
        email: None,
    };
    let empty = Invoice {
        number: String::new(),
        issued_on: String::new(),
        order_code: String::new(),
        channel: String::new(),
        shipment_id: -1,
        currency: String::new(),
        seller: Party::default(),
        ship_from: Party::default(),
        bill_to: Party::default(),
        lines: Vec::new(),
        taxable_minor: 0,
        tax_minor: 0,
        total_minor: 0,
    };
    let mut weird = invoice(odd, 3);
    weird.bill_to = odd_party.clone();
    weird.currency = odd.to_string();
    weird.lines[0] = InvoiceLine {
        sku: String::new(),
        name: String::new(),
        hsn: None,
        qty: 0,
        unit_price_minor: -1,
        tax_rate_bp: -1,
        taxable_minor: i64::MIN,
        tax_minor: i64::MAX,
        total_minor: -1,
    };
    let pdf = Pdf::new("oddinvoice", &invoices(&[empty, weird]));
    assert_eq!(pdf.page_count(), 2);
    let text = pdf.text();
    // Latin-1 survives (printpdf writes WinAnsi bytes), the rest turns into '?'.
    assert!(text.contains("?nanya ? Café Müller"), "{text}");
    assert!(text.contains("No lines"));

    let odd_labels = [
        Label {
            awb: String::new(),
            carrier: String::new(),
            order_code: String::new(),
            shipment_id: 0,
            ship_to: Party::default(),
            ship_from: Party::default(),
            units: 0,
            weight_grams: None,
        },
        Label {
            awb: odd.to_string(),
            carrier: odd.to_string(),
            order_code: odd.to_string(),
            shipment_id: i64::MIN,
            ship_to: odd_party.clone(),
            ship_from: odd_party,
            units: i64::MAX,
            weight_grams: Some(i64::MIN),
        },
    ];
    let pdf = Pdf::new("oddlabels", &labels(&odd_labels));
    assert_eq!(pdf.page_count(), 2);
    assert!(pdf.text().contains("?nanya ?"));
}

#[test]
fn nothing_to_print_is_still_a_valid_pdf() {
    let pdf = Pdf::new("noinvoices", &invoices(&[]));
    assert_eq!(pdf.page_count(), 1);
    let pdf = Pdf::new("nolabels", &labels(&[]));
    assert_eq!(pdf.page_count(), 1);
    assert!(pdf.info().contains("288 x 432 pts"));
}
