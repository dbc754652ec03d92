//! CSV uploads: a file is read and validated whole before anything is written; a bad file
//! answers with every bad row and writes nothing, a good one is written in one transaction.

use std::collections::HashMap;

use oms_domain::code::Code;
use oms_domain::masters::PartnerKind;
use oms_domain::validation::FieldError;
use oms_store::{ClientId, Store, inward, partners, skus};

use crate::auth::Scope;
use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult, RowError};
use crate::fields::Fields;
use crate::service;

/// Error rows listed in one answer; the message still counts them all.
pub const ROW_ERRORS_LISTED_MAX: usize = 10_000;

/// What an upload can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Skus,
    Suppliers,
    Customers,
    InwardOrders,
    OutwardOrders,
    Cancellations,
    PoolMovements,
}

const INWARD_ORDER_COLUMNS: &[&str] = &["order_code", "type", "warehouse", "party", "sku", "qty"];
/// Columns of an outward-order file that belong to the order, repeated on each line.
const OUTWARD_ORDER_LEVEL: &[&str] = &[
    "kind",
    "channel",
    "fulfilment_type",
    "retry",
    "dispatch_by",
    "priority",
    "warehouse",
    "destination_warehouse",
    "stock",
    "ship_to.name",
    "ship_to.address",
    "ship_to.pincode",
    "ship_to.phone",
    "ship_to.email",
    "ship_to.lat",
    "ship_to.lon",
];
const OUTWARD_LINE_COLUMNS: &[&str] = &["line_id", "sku", "qty", "price"];
/// Columns of an inward-order file that belong to the order, repeated on each of its lines.
const INWARD_ORDER_LEVEL: &[&str] = &["type", "warehouse", "party"];

impl UploadKind {
    pub const ALL: [UploadKind; 7] = [
        UploadKind::Skus,
        UploadKind::Suppliers,
        UploadKind::Customers,
        UploadKind::InwardOrders,
        UploadKind::OutwardOrders,
        UploadKind::Cancellations,
        UploadKind::PoolMovements,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Skus => "skus",
            UploadKind::Suppliers => "suppliers",
            UploadKind::Customers => "customers",
            UploadKind::InwardOrders => "inward-orders",
            UploadKind::OutwardOrders => "outward-orders",
            UploadKind::Cancellations => "cancellations",
            UploadKind::PoolMovements => "pool-movements",
        }
    }

    pub fn parse(text: &str) -> Option<UploadKind> {
        UploadKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The column naming each row's object, when rows are objects of their own.
    fn code_column(self) -> Option<&'static str> {
        match self {
            UploadKind::Skus | UploadKind::Suppliers | UploadKind::Customers => Some("code"),
            UploadKind::InwardOrders | UploadKind::OutwardOrders | UploadKind::Cancellations => {
                Some("order_code")
            }
            UploadKind::PoolMovements => None,
        }
    }

    /// The columns a file of this kind may have, besides `attr.<name>` for SKUs.
    fn columns(self) -> Vec<&'static str> {
        let mut columns: Vec<&'static str> = self.code_column().into_iter().collect();
        match self {
            UploadKind::Skus => columns.extend_from_slice(service::SKU_FIELDS),
            UploadKind::Suppliers | UploadKind::Customers => {
                columns.extend_from_slice(service::PARTNER_FIELDS)
            }
            UploadKind::InwardOrders => columns = INWARD_ORDER_COLUMNS.to_vec(),
            UploadKind::OutwardOrders => {
                columns.extend_from_slice(OUTWARD_ORDER_LEVEL);
                columns.extend_from_slice(OUTWARD_LINE_COLUMNS);
            }
            UploadKind::Cancellations => {
                columns.extend_from_slice(&["channel", "reason", "line_id", "qty"])
            }
            UploadKind::PoolMovements => {
                columns.extend_from_slice(service::stock::POOL_MOVEMENT_FIELDS)
            }
        }
        columns
    }

    /// The tables a file of this kind adds rows to, whose statistics a large file makes
    /// stale (see [`Store::refresh_statistics`]).
    fn tables_written(self) -> &'static [&'static str] {
        match self {
            UploadKind::Skus => &["skus"],
            UploadKind::Suppliers | UploadKind::Customers => &["partners"],
            UploadKind::InwardOrders => &["inward_orders", "inward_lines"],
            UploadKind::OutwardOrders => &[
                "orders",
                "order_lines",
                "shipments",
                "allocations",
                "stock",
                "ledger",
                "outbox",
            ],
            UploadKind::Cancellations => &["ledger", "outbox"],
            UploadKind::PoolMovements => &["stock", "ledger", "outbox"],
        }
    }

    /// What a caller needs to upload this kind.
    pub fn permission(self) -> oms_domain::access::Permission {
        match self {
            UploadKind::Skus
            | UploadKind::Suppliers
            | UploadKind::Customers
            | UploadKind::OutwardOrders => oms_domain::access::Permission::WriteMasters,
            UploadKind::InwardOrders | UploadKind::PoolMovements => {
                oms_domain::access::Permission::MoveStock
            }
            UploadKind::Cancellations => oms_domain::access::Permission::ActOnOrders,
        }
    }

    /// A header template, for people preparing a file.
    pub fn template(self) -> String {
        self.columns().join(",") + "\n"
    }
}

/// SKU attributes are `attr.<name>` in a file and `attributes.<name>` in JSON.
const ATTRIBUTE_COLUMN_PREFIX: &str = "attr.";
const ATTRIBUTE_FIELD_PREFIX: &str = "attributes.";

fn column_of(field: &str) -> String {
    match field.strip_prefix(ATTRIBUTE_FIELD_PREFIX) {
        Some(name) => format!("{ATTRIBUTE_COLUMN_PREFIX}{name}"),
        None => field.to_owned(),
    }
}

/// One data row of a file: its number (the header is row 1) and its non-blank cells.
#[derive(Debug)]
struct Row {
    number: u64,
    fields: Fields,
}

fn row_error(row: u64, column: &str, message: impl Into<String>) -> RowError {
    RowError {
        row,
        column: column.to_owned(),
        message: message.into(),
    }
}

/// Reads `bytes` as CSV of `kind`: checks the header, then turns each row into fields.
/// A bad header stops here; bad rows are reported with every other problem later, so a
/// file's answer lists every bad row.
fn read_rows(
    kind: UploadKind,
    bytes: &[u8],
    rows_max: usize,
) -> Result<(Vec<Row>, Vec<RowError>), Vec<RowError>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers = match reader.headers() {
        Ok(headers) => headers
            .iter()
            .map(|h| h.trim().to_owned())
            .collect::<Vec<_>>(),
        Err(e) => return Err(vec![row_error(1, "", format!("unreadable header: {e}"))]),
    };
    let columns = kind.columns();
    let mut errors = Vec::new();
    let mut field_names = Vec::with_capacity(headers.len());
    for (index, header) in headers.iter().enumerate() {
        if headers[..index].contains(header) {
            errors.push(row_error(1, header, "appears twice"));
        }
        let field = match header.strip_prefix(ATTRIBUTE_COLUMN_PREFIX) {
            Some(name) if kind == UploadKind::Skus && !name.is_empty() => {
                format!("{ATTRIBUTE_FIELD_PREFIX}{name}")
            }
            _ if columns.contains(&header.as_str()) => header.clone(),
            _ => {
                errors.push(row_error(1, header, "is not a known column"));
                header.clone()
            }
        };
        field_names.push(field);
    }
    if let Some(code) = kind.code_column()
        && !headers.iter().any(|h| h == code)
    {
        errors.push(row_error(1, code, "is required"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // The records are split out in file order; their fields are named in parts.
    let mut records = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let number = index as u64 + 2;
        if records.len() >= rows_max {
            errors.push(row_error(
                number,
                "",
                format!("a file holds at most {rows_max} rows"),
            ));
            break;
        }
        match record {
            Ok(record) => records.push((number, record)),
            Err(e) => errors.push(row_error(number, "", format!("unreadable row: {e}"))),
        }
    }
    let rows = in_parts(&mut records, |(number, record)| {
        let pairs = field_names
            .iter()
            .zip(record.iter())
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(field, value)| (field.clone(), value.to_owned()));
        Row {
            number: *number,
            fields: Fields::from_pairs(pairs),
        }
    });
    Ok((rows, errors))
}

fn row_errors(number: u64, problems: Vec<FieldError>) -> impl Iterator<Item = RowError> {
    problems.into_iter().map(move |p| RowError {
        row: number,
        column: column_of(&p.field),
        message: p.message,
    })
}

fn refused(mut errors: Vec<RowError>) -> ApiError {
    errors.sort_by_key(|e| e.row);
    let bad_rows = {
        let mut rows: Vec<u64> = errors.iter().map(|e| e.row).collect();
        rows.dedup();
        rows.len()
    };
    errors.truncate(ROW_ERRORS_LISTED_MAX);
    ApiError::InvalidRows {
        message: format!("{bad_rows} rows have errors; nothing was written"),
        details: errors,
    }
}

/// Masters files: one object per row, named by a `code` given once in the file.
fn validate_masters<T: Send>(
    mut rows: Vec<Row>,
    mut errors: Vec<RowError>,
    validate: impl Fn(&Fields) -> Result<T, Vec<FieldError>> + Sync,
) -> Result<Vec<(String, T)>, Vec<RowError>> {
    let checked = in_parts(&mut rows, |row| {
        let code = Code::required(row.fields.remove("code").as_deref());
        (code, validate(&row.fields))
    });
    let mut valid = Vec::with_capacity(rows.len());
    let mut first_row_of: HashMap<String, u64> = HashMap::new();
    for (row, (code, validated)) in rows.iter().zip(checked) {
        match code {
            Err(message) => errors.push(row_error(row.number, "code", message)),
            Ok(code) => match first_row_of.get(code.as_str()) {
                Some(first) => errors.push(row_error(
                    row.number,
                    "code",
                    format!("{code} appears already in row {first}"),
                )),
                None => {
                    first_row_of.insert(code.as_str().to_owned(), row.number);
                    match validated {
                        Ok(value) => valid.push((code.into_string(), value)),
                        Err(problems) => errors.extend(row_errors(row.number, problems)),
                    }
                    continue;
                }
            },
        }
        if let Err(problems) = validated {
            errors.extend(row_errors(row.number, problems));
        }
    }
    service::drop_aside(rows.len(), rows);
    if errors.is_empty() {
        Ok(valid)
    } else {
        Err(errors)
    }
}

/// `check` applied to every item, answered in the items' order. A large file's items are
/// checked in parts, one per core, while the database has nothing to do yet: a
/// 100,000-row order file spent ~0.5 s checking its orders on one thread (measured,
/// BENCHMARKS.md).
fn in_parts<T: Send, R: Send>(items: &mut [T], check: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    if items.len() < ITEMS_IN_PARTS_MIN {
        return items.iter_mut().map(check).collect();
    }
    in_parts_of(cores.min(PARTS_MAX), items, check)
}

/// [`in_parts`] in `parts` parts: the first on this thread, each other on one of its own.
fn in_parts_of<T: Send, R: Send>(
    parts: usize,
    items: &mut [T],
    check: impl Fn(&mut T) -> R + Sync,
) -> Vec<R> {
    if parts < 2 || items.is_empty() {
        return items.iter_mut().map(check).collect();
    }
    let check = &check;
    let size = items.len().div_ceil(parts);
    std::thread::scope(|scope| {
        let mut chunks = items.chunks_mut(size);
        let here = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || chunk.iter_mut().map(check).collect::<Vec<R>>()))
            .collect();
        let mut checked: Vec<R> = here.iter_mut().map(check).collect();
        for other in others {
            match other.join() {
                Ok(part) => checked.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        checked
    })
}

/// Items below which a file is checked on one thread: a few thousand rows take
/// milliseconds.
const ITEMS_IN_PARTS_MIN: usize = 2_000;

/// Threads a file is checked on at most.
const PARTS_MAX: usize = 8;

/// Rows from which an applied file counts as a bulk load, after which the planner's
/// statistics of the tables it wrote are refreshed.
const BULK_LOAD_ROWS: usize = 1_000;

/// Validates and applies one uploaded file of `kind`; answers the number of rows written.
pub async fn apply(
    store: &Store,
    scope: &Scope,
    kind: UploadKind,
    bytes: &[u8],
    rows_max: usize,
) -> ApiResult<usize> {
    let (rows, read_errors) = read_rows(kind, bytes, rows_max).map_err(refused)?;
    let count = rows.len();
    let client = scope.client;
    let at = now_micros();
    match kind {
        UploadKind::Skus => {
            let settings = service::settings(store, client).await?;
            let skus = validate_masters(rows, read_errors, |fields| {
                service::sku_draft(fields).and_then(|draft| draft.validate(&settings))
            })
            .map_err(refused)?;
            let mut tx = store.begin_write().await?;
            skus::upsert_many(tx.conn(), client, &skus, at).await?;
            tx.commit().await?;
        }
        UploadKind::Suppliers | UploadKind::Customers => {
            let partner_kind = if kind == UploadKind::Suppliers {
                PartnerKind::Supplier
            } else {
                PartnerKind::Customer
            };
            let valid = validate_masters(rows, read_errors, |fields| {
                service::partner_draft(fields).and_then(|draft| draft.validate())
            })
            .map_err(refused)?;
            let mut tx = store.begin_write().await?;
            partners::upsert_many(tx.conn(), client, partner_kind, &valid, at).await?;
            tx.commit().await?;
        }
        UploadKind::InwardOrders => {
            apply_inward_orders(store, client, rows, read_errors, at).await?
        }
        UploadKind::OutwardOrders => {
            apply_outward_orders(store, scope, rows, read_errors, at).await?
        }
        UploadKind::Cancellations => apply_cancellations(store, scope, rows, read_errors).await?,
        UploadKind::PoolMovements => {
            let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
            let fields: Vec<Fields> = rows.into_iter().map(|r| r.fields).collect();
            // An unreadable row is reported alone: the movements of the others depend on it.
            if !read_errors.is_empty() {
                return Err(refused(read_errors));
            }
            if let Err(problems) =
                service::stock::move_between_pools_all(store, scope, &fields).await?
            {
                let errors = problems
                    .into_iter()
                    .flat_map(|(index, problems)| row_errors(numbers[index], problems))
                    .collect();
                return Err(refused(errors));
            }
        }
    }
    if count >= BULK_LOAD_ROWS {
        store.refresh_statistics(kind.tables_written());
    }
    Ok(count)
}

/// One inward order of a file: its rows, in file order.
struct OrderRows {
    code: String,
    rows: Vec<Row>,
}

/// Inward-order files repeat the order's fields on each of its lines; rows of one order
/// must agree on them. Every order is checked, then all are written in one transaction.
async fn apply_inward_orders(
    store: &Store,
    client: ClientId,
    rows: Vec<Row>,
    mut errors: Vec<RowError>,
    at: i64,
) -> ApiResult<()> {
    let orders = group_orders(rows, &[], INWARD_ORDER_LEVEL, &mut errors);
    let mut tx = store.begin_write().await?;
    let mut prepared = Vec::with_capacity(orders.len());
    for order in &orders {
        let first = &order.rows[0];
        let fields = order_fields(order, INWARD_ORDER_LEVEL, &["sku", "qty"]);
        if let Ok(code) = Code::parse(&order.code)
            && inward::find_order(tx.conn(), client, code.as_str())
                .await?
                .is_some()
        {
            errors.push(row_error(
                first.number,
                "order_code",
                format!("inward order {code} exists already"),
            ));
            continue;
        }
        match service::inward::prepare(tx.conn(), client, &fields).await? {
            Ok(order) => prepared.push(order),
            Err(problems) => {
                for problem in problems {
                    let (number, column) = line_of(&problem.field, order, first.number);
                    errors.push(row_error(number, &column, problem.message));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(refused(errors));
    }
    for order in &prepared {
        service::inward::write(tx.conn(), client, order, at).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Groups a file's rows into orders by `order_code` (and the `key_columns`, e.g. the
/// channel), in file order; rows of one order must agree on its `order_level` columns.
fn group_orders(
    rows: Vec<Row>,
    key_columns: &[&str],
    order_level: &[&str],
    errors: &mut Vec<RowError>,
) -> Vec<OrderRows> {
    // Each row's order is found by keys borrowed from the rows, which then move into
    // their orders: nothing is cloned per row to find or compare them.
    let mut order_of: Vec<Option<usize>> = Vec::with_capacity(rows.len());
    let mut first_rows: Vec<usize> = Vec::new();
    let mut index_of: HashMap<Vec<Option<&str>>, usize> = HashMap::new();
    for (at, row) in rows.iter().enumerate() {
        let Some(code) = row.fields.value("order_code") else {
            errors.push(row_error(row.number, "order_code", "is required"));
            order_of.push(None);
            continue;
        };
        let mut key = vec![Some(code)];
        key.extend(key_columns.iter().map(|c| row.fields.value(c)));
        let index = *index_of.entry(key).or_insert(first_rows.len());
        if index == first_rows.len() {
            first_rows.push(at);
        } else {
            let first = &rows[first_rows[index]];
            for column in order_level {
                if row.fields.value(column) != first.fields.value(column) {
                    errors.push(row_error(
                        row.number,
                        column,
                        format!("differs from row {} of the same order", first.number),
                    ));
                }
            }
        }
        order_of.push(Some(index));
    }
    drop(index_of);
    let mut orders: Vec<OrderRows> = first_rows
        .iter()
        .map(|&at| OrderRows {
            code: rows[at].fields.get("order_code").unwrap_or_default(),
            rows: Vec::new(),
        })
        .collect();
    for (row, order) in rows.into_iter().zip(order_of) {
        if let Some(index) = order {
            orders[index].rows.push(row);
        }
    }
    orders
}

/// One order's fields as its JSON body would have them: the order-level columns of its
/// first row, and `lines[i].<column>` from each of its rows.
fn order_fields(order: &OrderRows, order_level: &[&str], line_columns: &[&str]) -> Fields {
    let first = &order.rows[0];
    let mut fields = Fields::default();
    fields.insert("order_code", order.code.clone());
    for column in order_level {
        if let Some(value) = first.fields.get(column) {
            fields.insert(*column, value);
        }
    }
    for (index, row) in order.rows.iter().enumerate() {
        for column in line_columns {
            if let Some(value) = row.fields.get(column) {
                fields.insert(format!("lines[{index}].{column}"), value);
            }
        }
    }
    fields
}

/// Outward-order files: one row per line, the order's fields repeated on each. Every order
/// is checked and resolved, then all new ones are written and allocated in one
/// transaction; an order already stored with the same content counts as written.
async fn apply_outward_orders(
    store: &Store,
    scope: &Scope,
    rows: Vec<Row>,
    mut errors: Vec<RowError>,
    at: i64,
) -> ApiResult<()> {
    let client = scope.client;
    let mut orders = group_orders(rows, &["channel"], OUTWARD_ORDER_LEVEL, &mut errors);
    let checked = in_parts(&mut orders, |order| {
        let fields = order_fields(order, OUTWARD_ORDER_LEVEL, OUTWARD_LINE_COLUMNS);
        service::orders::validate(&fields)
    });
    let mut validated = Vec::with_capacity(orders.len());
    for (index, checked) in checked.into_iter().enumerate() {
        let order = &orders[index];
        match checked {
            Ok(valid) => validated.push((index, valid)),
            Err(problems) => {
                for problem in problems {
                    let (number, column) = line_of(&problem.field, order, order.rows[0].number);
                    errors.push(row_error(number, &column, problem.message));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(refused(errors));
    }
    let mut tx = store.begin_write().await?;
    let mut created = Vec::new();
    // Every order of the file in a few multi-row statements, codes resolved once.
    let batch: Vec<_> = validated
        .iter()
        .map(|(_, (new_order, hash))| (new_order, hash.as_str()))
        .collect();
    let answers = service::orders::stage_many(tx.conn(), client, &batch, at).await?;
    for ((index, _), answer) in validated.iter().zip(answers) {
        let order = &orders[*index];
        match answer {
            Ok(service::orders::Ingested::Created(view)) => created.push(*view),
            Ok(service::orders::Ingested::Same(_)) => {}
            Ok(service::orders::Ingested::Different) => errors.push(row_error(
                order.rows[0].number,
                "order_code",
                format!(
                    "order {} exists in this channel with a different body",
                    order.code
                ),
            )),
            Err(problems) => {
                for problem in problems {
                    let (number, column) = line_of(&problem.field, order, order.rows[0].number);
                    errors.push(row_error(number, &column, problem.message));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(refused(errors));
    }
    service::allocate::run_created(tx.conn(), client, &mut created, true, &scope.actor, at).await?;
    tx.commit().await?;
    service::drop_aside(orders.len(), (orders, validated, created));
    Ok(())
}

/// Cancellation files: one row per line to cancel (`order_code, channel, reason, line_id,
/// qty`), or one row without `line_id` and `qty` to cancel a whole order. All in one
/// transaction: any refused order refuses the file.
async fn apply_cancellations(
    store: &Store,
    scope: &Scope,
    rows: Vec<Row>,
    mut errors: Vec<RowError>,
) -> ApiResult<()> {
    let orders = group_orders(rows, &["channel"], &["reason"], &mut errors);
    let mut tx = store.begin_write().await?;
    for order in &orders {
        let first = order.rows[0].number;
        let whole = order
            .rows
            .iter()
            .filter(|r| r.fields.get("line_id").is_none())
            .count();
        if whole > 0 && whole != order.rows.len() {
            errors.push(row_error(
                first,
                "line_id",
                "a file cancels an order whole (no line_id) or by lines, not both",
            ));
            continue;
        }
        let mut fields = order_fields(order, &["reason"], &["line_id", "qty"]);
        fields.remove("order_code");
        let channel = order.rows[0].fields.get("channel").unwrap_or_default();
        match service::fulfilment::cancel_in(tx.conn(), scope, &order.code, &channel, &fields).await
        {
            Ok(_) => {}
            Err(ApiError::Invalid { details, .. }) => {
                for problem in details {
                    let (number, column) = line_of(&problem.field, order, first);
                    errors.push(row_error(number, &column, problem.message));
                }
            }
            Err(ApiError::NotFound(what)) => {
                errors.push(row_error(first, "order_code", format!("{what} not found")))
            }
            Err(ApiError::Conflict(message)) => errors.push(row_error(first, "qty", message)),
            // A database refusal leaves the transaction unusable: report what we have.
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(refused(errors));
    }
    tx.commit().await?;
    Ok(())
}

/// The file row and column of an order field: `lines[2].qty` is the third row's `qty`.
fn line_of(field: &str, order: &OrderRows, first_row: u64) -> (u64, String) {
    if let Some(rest) = field.strip_prefix("lines[")
        && let Some((index, column)) = rest.split_once("].")
        && let Ok(index) = index.parse::<usize>()
        && let Some(row) = order.rows.get(index)
    {
        return (row.number, column.to_owned());
    }
    (first_row, field.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_must_name_known_columns_once_and_include_code() {
        let errors = read_rows(UploadKind::Skus, b"name,colour,name\n", 10).unwrap_err();
        let columns: Vec<&str> = errors.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(columns, ["colour", "name", "code"]);
        assert!(errors.iter().all(|e| e.row == 1));
    }

    #[test]
    fn rows_are_numbered_from_two_and_repeated_codes_refused() {
        let csv = "\u{feff}code,name,mrp,attr.colour\nA,Tee,10,Red\nB,Shirt,5,\nA,Tee again,10,\n";
        let (rows, errors) = read_rows(UploadKind::Skus, csv.as_bytes(), 10).unwrap();
        assert!(errors.is_empty());
        assert_eq!(rows[0].number, 2);
        assert_eq!(
            rows[0].fields.get("attributes.colour").as_deref(),
            Some("Red")
        );
        assert_eq!(rows[1].fields.get("attributes.colour"), None);
        let errors =
            validate_masters(rows, Vec::new(), |_| Ok::<_, Vec<FieldError>>(())).unwrap_err();
        assert_eq!(errors, [row_error(4, "code", "A appears already in row 2")]);
    }

    #[test]
    fn checks_in_parts_answer_in_the_items_order() {
        for parts in [1, 2, 3, 7] {
            let mut items: Vec<usize> = (0..1_000).collect();
            let checked = in_parts_of(parts, &mut items, |item| {
                *item += 1;
                (*item * 10, std::thread::current().id())
            });
            let values: Vec<usize> = checked.iter().map(|(value, _)| *value).collect();
            assert_eq!(values, (1..=1_000).map(|n| n * 10).collect::<Vec<_>>());
            assert_eq!(
                items,
                (1..=1_000).collect::<Vec<_>>(),
                "each item checked once"
            );
            let mut threads: Vec<_> = checked.iter().map(|(_, thread)| *thread).collect();
            threads.dedup();
            assert_eq!(threads.len(), parts, "{parts} parts, each on a thread");
        }
        let mut none: Vec<usize> = Vec::new();
        assert!(in_parts_of(4, &mut none, |item| *item).is_empty());
    }

    #[test]
    fn a_large_masters_file_reports_every_bad_row_in_any_part() {
        let mut csv = String::from("code,name,mrp\n");
        for i in 0..ITEMS_IN_PARTS_MIN * 2 {
            match i {
                // Row 12: no name; the last row repeats row 2's code; the row in the
                // middle has a bad price.
                10 => csv.push_str("S-10,,5\n"),
                n if n == ITEMS_IN_PARTS_MIN => csv.push_str(&format!("S-{n},Tee,-1\n")),
                n if n == ITEMS_IN_PARTS_MIN * 2 - 1 => csv.push_str("S-0,Tee,5\n"),
                n => csv.push_str(&format!("S-{n},Tee,5\n")),
            }
        }
        let (rows, errors) = read_rows(UploadKind::Skus, csv.as_bytes(), 10_000).unwrap();
        assert!(errors.is_empty());
        let errors = validate_masters(rows, Vec::new(), |fields| {
            service::sku_draft(fields).and_then(|draft| draft.validate(&Default::default()))
        })
        .unwrap_err();
        let rows: Vec<(u64, &str)> = errors.iter().map(|e| (e.row, e.column.as_str())).collect();
        let last = ITEMS_IN_PARTS_MIN as u64 * 2 + 1;
        assert_eq!(
            rows,
            [
                (12, "name"),
                (ITEMS_IN_PARTS_MIN as u64 + 2, "mrp"),
                (last, "code")
            ]
        );
    }

    #[test]
    fn attribute_fields_report_as_their_column() {
        assert_eq!(column_of("attributes.colour"), "attr.colour");
        assert_eq!(column_of("mrp"), "mrp");
    }

    #[test]
    fn a_file_over_the_row_limit_is_refused() {
        let (_, errors) =
            read_rows(UploadKind::Suppliers, b"code,name\nA,a\nB,b\nC,c\n", 2).unwrap();
        assert_eq!(errors[0].row, 4);
    }

    #[test]
    fn order_fields_map_back_to_their_rows() {
        let order = OrderRows {
            code: "PO-1".into(),
            rows: vec![
                Row {
                    number: 5,
                    fields: Fields::default(),
                },
                Row {
                    number: 9,
                    fields: Fields::default(),
                },
            ],
        };
        assert_eq!(line_of("lines[1].qty", &order, 5), (9, "qty".to_owned()));
        assert_eq!(line_of("warehouse", &order, 5), (5, "warehouse".to_owned()));
    }
}
