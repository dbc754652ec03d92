//! The documents a warehouse prints for a shipment: the tax invoice (A4) and the shipping
//! label (4×6 inch, the AWB as a Code128 barcode). Pure rendering: the caller gathers and
//! computes every figure; this crate only lays them out.
//!
//! Text is set in the PDF builtin Helvetica faces, which cover Latin-1 only: anything else
//! prints as `?`, control chars are dropped. Rendering never fails and never panics; text
//! too long for its place is wrapped, shrunk (figures) or cut with "...".

mod barcode;
mod canvas;
mod format;
mod invoice;
mod label;
mod text;

#[cfg(test)]
mod tests;

pub use format::{format_money, format_tax_rate};

/// A party printed on a document: the seller, the warehouse shipped from, the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    /// Free-text address; may hold newlines, and is wrapped to the column's width.
    pub address: Option<String>,
    pub pincode: Option<String>,
    /// Tax registration (GSTIN) when known.
    pub gstin: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// One invoice line. Money is in minor units (paise/cents); the caller has done the sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub sku: String,
    pub name: String,
    pub hsn: Option<String>,
    pub qty: i64,
    /// Price of one unit as charged, tax included.
    pub unit_price_minor: i64,
    /// Tax rate in basis points (1800 = 18%).
    pub tax_rate_bp: i64,
    /// Value before tax of the whole line.
    pub taxable_minor: i64,
    pub tax_minor: i64,
    /// `taxable_minor + tax_minor`.
    pub total_minor: i64,
}

/// A tax invoice for one shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The invoice number from the client's gap-free sequence, e.g. `INV-000042`.
    pub number: String,
    /// Issue date as printed, e.g. `2026-11-28`.
    pub issued_on: String,
    pub order_code: String,
    pub channel: String,
    pub shipment_id: i64,
    /// ISO currency code printed beside amounts, e.g. `INR`.
    pub currency: String,
    pub seller: Party,
    pub ship_from: Party,
    pub bill_to: Party,
    pub lines: Vec<InvoiceLine>,
    pub taxable_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

/// A 4×6 inch shipping label for one shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub awb: String,
    pub carrier: String,
    pub order_code: String,
    pub shipment_id: i64,
    pub ship_to: Party,
    pub ship_from: Party,
    /// Units in the parcel.
    pub units: i64,
    /// Total weight when every SKU has one.
    pub weight_grams: Option<i64>,
}

/// All `invoices` as one A4 PDF, each starting on a new page (an order shipped in several
/// parcels prints one invoice per shipment, in one file). A table too long for a page
/// continues on the next with its header repeated; pages are numbered per invoice.
/// An empty slice gives a single blank page.
pub fn invoices(invoices: &[Invoice]) -> Vec<u8> {
    let pages = invoices.iter().flat_map(invoice::render).collect();
    canvas::to_pdf("Tax invoices", pages, canvas::PageSize::A4)
}

/// All `labels` as one PDF, one 4×6 inch (288 × 432 pt) portrait page each.
/// An empty slice gives a single blank page.
pub fn labels(labels: &[Label]) -> Vec<u8> {
    let pages = labels.iter().map(label::render).collect();
    canvas::to_pdf("Shipping labels", pages, canvas::PageSize::LABEL_4X6)
}
