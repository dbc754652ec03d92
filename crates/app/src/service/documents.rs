//! The documents a warehouse prints: a shipment's tax invoice, numbered when it is packed,
//! and its shipping label once it has an AWB. Per shipment, or per order (one page per
//! shipment that has the document).

use oms_documents::{Invoice, InvoiceLine, Label, Party};
use oms_domain::invoice::{Invoicing, line_amounts};
use oms_domain::settings::ClientSettings;
use oms_store::documents::{self, DocumentLine, ShipmentDocument, WarehouseParty};
use oms_store::{ClientId, Conn, Store, clients};

use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::service::orders::find;

/// Which shipments a document is asked for.
pub enum Subject<'a> {
    Shipment(i64),
    Order { code: &'a str, channel: &'a str },
}

async fn invoicing(conn: &mut Conn, client: ClientId) -> ApiResult<Invoicing> {
    let settings: ClientSettings = serde_json::from_str(&clients::settings_in(conn, client).await?)
        .map_err(|e| ApiError::Internal(format!("stored settings: {e}")))?;
    Ok(settings.invoicing)
}

/// Gives a shipment being packed its invoice number, in the packing transaction: the next
/// of the client's gap-free sequence. Answers the number as printed.
pub async fn issue_invoice(
    conn: &mut Conn,
    client: ClientId,
    shipment: i64,
    at: i64,
) -> ApiResult<String> {
    let invoicing = invoicing(&mut *conn, client).await?;
    let sequence = documents::next_invoice_number(&mut *conn, client).await?;
    let number = invoicing.number(sequence);
    documents::insert_invoice(conn, client, shipment, sequence, &number, at).await?;
    Ok(number)
}

/// The shipments of `subject`, read in one snapshot.
async fn shipments(
    conn: &mut Conn,
    scope: &Scope,
    subject: &Subject<'_>,
) -> ApiResult<Vec<ShipmentDocument>> {
    match subject {
        Subject::Shipment(id) => Ok(vec![
            documents::shipment(&mut *conn, scope.client, *id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("shipment {id}")))?,
        ]),
        Subject::Order { code, channel } => {
            let order = find(&mut *conn, scope.client, code, channel).await?;
            Ok(documents::order_shipments(&mut *conn, scope.client, order.id).await?)
        }
    }
}

/// Keeps the shipments `ready` accepts; a single shipment that is not ready, or an order
/// with none ready, is a 409 saying why.
fn ready_ones(
    shipments: Vec<ShipmentDocument>,
    subject: &Subject<'_>,
    ready: impl Fn(&ShipmentDocument) -> Result<(), String>,
) -> ApiResult<Vec<ShipmentDocument>> {
    let mut reasons = Vec::new();
    let mut kept = Vec::new();
    for shipment in shipments {
        match ready(&shipment) {
            Ok(()) => kept.push(shipment),
            Err(reason) => reasons.push(reason),
        }
    }
    if !kept.is_empty() {
        return Ok(kept);
    }
    Err(ApiError::Conflict(match subject {
        Subject::Shipment(_) => reasons.join("; "),
        Subject::Order { code, .. } if reasons.is_empty() => {
            format!("order {code} has no shipment yet")
        }
        Subject::Order { code, .. } => format!("order {code}: {}", reasons.join("; ")),
    }))
}

fn invoiced(shipment: &ShipmentDocument) -> Result<(), String> {
    match shipment.invoice_number {
        Some(_) => Ok(()),
        None => Err(format!(
            "shipment {} is {}: its invoice is issued when it is PACKED",
            shipment.shipment_id, shipment.status
        )),
    }
}

fn labelled(shipment: &ShipmentDocument) -> Result<(), String> {
    if matches!(
        shipment.status.as_str(),
        "RELEASED" | "PICKED" | "CANCELLED"
    ) {
        return Err(format!(
            "shipment {} is {}: its label prints once it is PACKED",
            shipment.shipment_id, shipment.status
        ));
    }
    match shipment.awb {
        Some(_) => Ok(()),
        None => Err(format!(
            "shipment {} has no AWB yet: the WMS sends it with PACKED or SHIPPED",
            shipment.shipment_id
        )),
    }
}

fn warehouse_party(w: &WarehouseParty) -> Party {
    Party {
        name: w.name.clone(),
        address: w.address.clone(),
        pincode: Some(w.pincode.clone()),
        ..Party::default()
    }
}

/// Where the parcel goes: the customer, or a stock transfer's destination warehouse.
fn ship_to(shipment: &ShipmentDocument) -> Party {
    match (&shipment.ship_name, &shipment.to_warehouse) {
        (None, Some(destination)) => warehouse_party(destination),
        _ => Party {
            name: shipment.ship_name.clone().unwrap_or_default(),
            address: shipment.ship_address.clone(),
            pincode: shipment.ship_pincode.clone(),
            gstin: None,
            phone: shipment.ship_phone.clone(),
            email: shipment.ship_email.clone(),
        },
    }
}

/// The unit price an invoice charges: the order line's price, else the SKU's selling
/// price, else its MRP.
fn unit_price(line: &DocumentLine) -> i64 {
    line.line_price_minor
        .or(line.sku_price_minor)
        .unwrap_or(line.mrp_minor)
}

fn invoice_of(
    shipment: &ShipmentDocument,
    lines: &[DocumentLine],
    invoicing: &Invoicing,
) -> Invoice {
    let lines: Vec<InvoiceLine> = lines
        .iter()
        .map(|line| {
            let price = unit_price(line);
            let rate = line.tax_rate_bp.unwrap_or(0);
            let amounts = line_amounts(price, line.qty, rate);
            InvoiceLine {
                sku: line.sku.clone(),
                name: line.name.clone(),
                hsn: line.hsn.clone(),
                qty: line.qty,
                unit_price_minor: price,
                tax_rate_bp: rate,
                taxable_minor: amounts.taxable_minor,
                tax_minor: amounts.tax_minor,
                total_minor: amounts.total_minor,
            }
        })
        .collect();
    Invoice {
        number: shipment.invoice_number.clone().unwrap_or_default(),
        issued_on: shipment
            .invoiced_at
            .map(|at| crate::clock::rfc3339(at)[..10].to_owned())
            .unwrap_or_default(),
        order_code: shipment.order_code.clone(),
        channel: shipment.channel.clone(),
        shipment_id: shipment.shipment_id,
        currency: invoicing.currency.clone(),
        seller: Party {
            name: invoicing
                .legal_name
                .clone()
                .unwrap_or_else(|| shipment.client_name.clone()),
            address: invoicing.address.clone(),
            pincode: invoicing.pincode.clone(),
            gstin: invoicing.gstin.clone(),
            ..Party::default()
        },
        ship_from: warehouse_party(&shipment.from),
        bill_to: ship_to(shipment),
        taxable_minor: lines.iter().map(|l| l.taxable_minor).sum(),
        tax_minor: lines.iter().map(|l| l.tax_minor).sum(),
        total_minor: lines.iter().map(|l| l.total_minor).sum(),
        lines,
    }
}

fn label_of(shipment: &ShipmentDocument, lines: &[DocumentLine]) -> Label {
    let weights: Option<Vec<i64>> = lines
        .iter()
        .map(|l| l.weight_grams.map(|w| w.saturating_mul(l.qty)))
        .collect();
    Label {
        awb: shipment.awb.clone().unwrap_or_default(),
        carrier: shipment.carrier.clone().unwrap_or_default(),
        order_code: shipment.order_code.clone(),
        shipment_id: shipment.shipment_id,
        ship_to: ship_to(shipment),
        ship_from: warehouse_party(&shipment.from),
        units: lines.iter().map(|l| l.qty).sum(),
        weight_grams: weights.map(|w| w.iter().sum()),
    }
}

/// The two documents of a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Invoice,
    Label,
}

/// The invoice(s) or label(s) of `subject` as one PDF, read in one snapshot.
pub async fn pdf(
    store: &Store,
    scope: &Scope,
    subject: Subject<'_>,
    document: Document,
) -> ApiResult<Vec<u8>> {
    let mut tx = store.begin_snapshot().await?;
    let found = shipments(tx.conn(), scope, &subject).await?;
    let ready = match document {
        Document::Invoice => ready_ones(found, &subject, invoiced)?,
        Document::Label => ready_ones(found, &subject, labelled)?,
    };
    let invoicing = invoicing(tx.conn(), scope.client).await?;
    let mut invoices = Vec::new();
    let mut labels = Vec::new();
    for shipment in &ready {
        let lines =
            documents::shipment_lines(tx.conn(), scope.client, shipment.shipment_id).await?;
        match document {
            Document::Invoice => invoices.push(invoice_of(shipment, &lines, &invoicing)),
            Document::Label => labels.push(label_of(shipment, &lines)),
        }
    }
    tx.commit().await?;
    Ok(match document {
        Document::Invoice => oms_documents::invoices(&invoices),
        Document::Label => oms_documents::labels(&labels),
    })
}
