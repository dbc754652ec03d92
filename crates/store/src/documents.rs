//! What the documents of a shipment print: its invoice number, its lines with their SKUs'
//! tax details, and the parties. Invoice numbers come from a per-client gap-free sequence.

use sqlx::{AnyConnection, AnyExecutor, Row};

use crate::{ClientId, StoreResult};

/// Draws the client's next invoice number. The sequence row stays locked (PostgreSQL) or
/// written (SQLite) until the transaction ends, so numbers are handed out in commit order
/// and a rollback returns its number: no gaps, no repeats.
pub async fn next_invoice_number(conn: &mut AnyConnection, client: ClientId) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO invoice_sequences (client_id, last_number) VALUES ($1, 1) \
                       ON CONFLICT (client_id) DO UPDATE \
                       SET last_number = invoice_sequences.last_number + 1 \
                       RETURNING last_number";
    let row = sqlx::query(SQL).bind(client.0).fetch_one(conn).await?;
    Ok(row.try_get("last_number")?)
}

pub async fn insert_invoice(
    conn: &mut AnyConnection,
    client: ClientId,
    shipment: i64,
    sequence_number: i64,
    number: &str,
    at: i64,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO invoices (client_id, shipment_id, sequence_number, number, issued_at) \
                       VALUES ($1, $2, $3, $4, $5)";
    sqlx::query(SQL)
        .bind(client.0)
        .bind(shipment)
        .bind(sequence_number)
        .bind(number)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// A shipment with everything its documents print about it.
#[derive(Debug, Clone)]
pub struct ShipmentDocument {
    pub shipment_id: i64,
    pub status: String,
    pub awb: Option<String>,
    pub carrier: Option<String>,
    pub invoice_number: Option<String>,
    pub invoiced_at: Option<i64>,
    pub client_name: String,
    pub order_code: String,
    pub order_kind: String,
    pub channel: String,
    pub ship_name: Option<String>,
    pub ship_address: Option<String>,
    pub ship_pincode: Option<String>,
    pub ship_phone: Option<String>,
    pub ship_email: Option<String>,
    pub from: WarehouseParty,
    /// A stock transfer's destination.
    pub to_warehouse: Option<WarehouseParty>,
}

#[derive(Debug, Clone)]
pub struct WarehouseParty {
    pub name: String,
    pub address: Option<String>,
    pub pincode: String,
}

const SHIPMENT_DOCUMENT: &str = "SELECT s.id, s.status, s.awb, s.carrier, i.number AS invoice_number, \
     i.issued_at, c.name AS client_name, o.order_code, o.kind, ch.code AS channel, \
     o.ship_name, o.ship_address, o.ship_pincode, o.ship_phone, o.ship_email, \
     w.name AS from_name, w.address AS from_address, w.pincode AS from_pincode, \
     d.name AS to_name, d.address AS to_address, d.pincode AS to_pincode \
     FROM shipments s \
     JOIN orders o ON o.id = s.order_id \
     JOIN clients c ON c.id = s.client_id \
     JOIN channels ch ON ch.id = o.channel_id \
     JOIN warehouses w ON w.id = s.warehouse_id \
     LEFT JOIN warehouses d ON d.id = o.destination_warehouse_id \
     LEFT JOIN invoices i ON i.shipment_id = s.id";

fn shipment_document(row: &sqlx::any::AnyRow) -> StoreResult<ShipmentDocument> {
    let to_name: Option<String> = row.try_get("to_name")?;
    Ok(ShipmentDocument {
        shipment_id: row.try_get("id")?,
        status: row.try_get("status")?,
        awb: row.try_get("awb")?,
        carrier: row.try_get("carrier")?,
        invoice_number: row.try_get("invoice_number")?,
        invoiced_at: row.try_get("issued_at")?,
        client_name: row.try_get("client_name")?,
        order_code: row.try_get("order_code")?,
        order_kind: row.try_get("kind")?,
        channel: row.try_get("channel")?,
        ship_name: row.try_get("ship_name")?,
        ship_address: row.try_get("ship_address")?,
        ship_pincode: row.try_get("ship_pincode")?,
        ship_phone: row.try_get("ship_phone")?,
        ship_email: row.try_get("ship_email")?,
        from: WarehouseParty {
            name: row.try_get("from_name")?,
            address: row.try_get("from_address")?,
            pincode: row.try_get("from_pincode")?,
        },
        to_warehouse: match to_name {
            Some(name) => Some(WarehouseParty {
                name,
                address: row.try_get("to_address")?,
                pincode: row.try_get("to_pincode")?,
            }),
            None => None,
        },
    })
}

/// One shipment of the client, or `None` (another client's shipment is missing too).
pub async fn shipment<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    shipment: i64,
) -> StoreResult<Option<ShipmentDocument>> {
    let sql = format!("{SHIPMENT_DOCUMENT} WHERE s.id = $1 AND s.client_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(shipment)
        .bind(client.0)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(shipment_document).transpose()
}

/// Every shipment of one order, oldest first.
pub async fn order_shipments<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    order: i64,
) -> StoreResult<Vec<ShipmentDocument>> {
    let sql =
        format!("{SHIPMENT_DOCUMENT} WHERE s.order_id = $1 AND s.client_id = $2 ORDER BY s.id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(order)
        .bind(client.0)
        .fetch_all(db)
        .await?;
    rows.iter().map(shipment_document).collect()
}

/// What a shipment carries of one order line, with the SKU's invoice details.
#[derive(Debug, Clone)]
pub struct DocumentLine {
    pub line_id: String,
    pub sku: String,
    pub name: String,
    pub hsn: Option<String>,
    pub tax_rate_bp: Option<i64>,
    pub line_price_minor: Option<i64>,
    pub sku_price_minor: Option<i64>,
    pub mrp_minor: i64,
    pub weight_grams: Option<i64>,
    pub qty: i64,
}

/// The shipment's units per order line, in line order.
pub async fn shipment_lines<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    shipment: i64,
) -> StoreResult<Vec<DocumentLine>> {
    const SQL: &str = "SELECT l.line_id, s.code, s.name, s.hsn, s.tax_rate_bp, \
                       l.price_minor AS line_price, s.price_minor AS sku_price, s.mrp_minor, \
                       s.weight_grams, CAST(SUM(a.qty) AS BIGINT) AS qty \
                       FROM allocations a \
                       JOIN order_lines l ON l.id = a.order_line_id \
                       JOIN skus s ON s.id = a.sku_id \
                       WHERE a.shipment_id = $1 AND a.client_id = $2 \
                       GROUP BY l.id, l.line_id, s.code, s.name, s.hsn, s.tax_rate_bp, l.price_minor, \
                       s.price_minor, s.mrp_minor, s.weight_grams \
                       ORDER BY l.id";
    let rows = sqlx::query(SQL)
        .bind(shipment)
        .bind(client.0)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DocumentLine {
                line_id: row.try_get("line_id")?,
                sku: row.try_get("code")?,
                name: row.try_get("name")?,
                hsn: row.try_get("hsn")?,
                tax_rate_bp: row.try_get("tax_rate_bp")?,
                line_price_minor: row.try_get("line_price")?,
                sku_price_minor: row.try_get("sku_price")?,
                mrp_minor: row.try_get("mrp_minor")?,
                weight_grams: row.try_get("weight_grams")?,
                qty: row.try_get("qty")?,
            })
        })
        .collect()
}

/// Per client, the issued sequence numbers and the sequence's last number: `oms check`
/// proves the numbers run 1..=last without gaps or repeats.
pub async fn invoice_numbers<'e>(
    db: impl AnyExecutor<'e>,
) -> StoreResult<Vec<(i64, Option<i64>, Vec<i64>)>> {
    const SQL: &str = "SELECT c.id, q.last_number, i.sequence_number FROM clients c \
                       LEFT JOIN invoice_sequences q ON q.client_id = c.id \
                       LEFT JOIN invoices i ON i.client_id = c.id \
                       ORDER BY c.id, i.sequence_number";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    let mut out: Vec<(i64, Option<i64>, Vec<i64>)> = Vec::new();
    for row in &rows {
        let client: i64 = row.try_get("id")?;
        let last: Option<i64> = row.try_get("last_number")?;
        let number: Option<i64> = row.try_get("sequence_number")?;
        if out.last().is_none_or(|(c, _, _)| *c != client) {
            out.push((client, last, Vec::new()));
        }
        if let (Some(entry), Some(number)) = (out.last_mut(), number) {
            entry.2.push(number);
        }
    }
    Ok(out)
}

/// Shipments whose invoice state disagrees with their status: packed or later without an
/// invoice, or an invoice on a shipment never packed. `oms check` reports each.
pub async fn invoice_mismatches<'e>(db: impl AnyExecutor<'e>) -> StoreResult<Vec<(i64, String)>> {
    const SQL: &str = "SELECT s.id, s.status FROM shipments s \
                       LEFT JOIN invoices i ON i.shipment_id = s.id \
                       WHERE (i.id IS NULL) = (s.status IN ('PACKED', 'SHIPPED', 'DELIVERED', 'RTO')) \
                       ORDER BY s.id";
    let rows = sqlx::query(SQL).fetch_all(db).await?;
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("status")?)))
        .collect()
}
