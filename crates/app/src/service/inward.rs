//! Inward orders: create, receive (GRN), quality-check, close. Each use case validates
//! everything first, then writes line counts and stock movements in one transaction.

use std::collections::{BTreeSet, HashMap};

use oms_domain::code::Code;
use oms_domain::inventory::Movement;
use oms_domain::inward::{
    InwardKind, InwardLineDraft, PartyKind, line_qty, optional_qty, validate_new_inward_order,
};
use oms_domain::masters::PartnerKind;
use oms_domain::validation::{FieldError, Problems};
use oms_store::inward::{self, InwardLineRow, InwardOrderRow};
use oms_store::stock::{self, LedgerEntry, StockKey};
use oms_store::{ClientId, Conn as AnyConnection, Store, StoreError, partners, skus, warehouses};

use crate::auth::Scope;
use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::service::stock::StockChanges;
use crate::service::{refuse_unknown, settings};

pub const INWARD_ORDER_FIELDS: &[&str] = &[
    "order_code",
    "type",
    "warehouse",
    "party",
    "lines[].sku",
    "lines[].qty",
];

/// An inward order with its lines, as the API shows it.
pub struct InwardView {
    pub order: InwardOrderRow,
    pub lines: Vec<InwardLineRow>,
}

/// A new inward order, checked and resolved to ids, ready to write.
pub struct PreparedInwardOrder {
    pub code: Code,
    pub kind: InwardKind,
    pub warehouse: i64,
    pub party: Option<Code>,
    /// (sku id, ordered)
    pub lines: Vec<(i64, i64)>,
}

/// Checks a new inward order's fields and resolves its warehouse, party and SKUs;
/// every problem is reported, with field names as the JSON body has them. A database that
/// cannot answer is the outer error (503 when unavailable), never a problem of the input.
pub async fn prepare(
    conn: &mut AnyConnection,
    client: ClientId,
    fields: &Fields,
) -> ApiResult<Result<PreparedInwardOrder, Vec<FieldError>>> {
    if let Err(problems) = refuse_unknown(fields, INWARD_ORDER_FIELDS, &[]) {
        return Ok(Err(problems));
    }
    let mut problems = Problems::new();
    let code = problems.take(
        "order_code",
        Code::required(fields.get("order_code").as_deref()),
    );
    let lines: Vec<InwardLineDraft> = fields
        .items("lines")
        .iter()
        .map(|line| InwardLineDraft {
            sku: line.get("sku"),
            qty: line.get("qty"),
        })
        .collect();
    let order = validate_new_inward_order(
        fields.get("type").as_deref(),
        fields.get("warehouse").as_deref(),
        fields.get("party").as_deref(),
        &lines,
    );
    let order = match order {
        Ok(order) => Some(order),
        Err(errors) => {
            for error in errors {
                problems.add(error.field, error.message);
            }
            None
        }
    };
    if let Some(code) = &code
        && let Some(prefix) = crate::service::fulfilment::RESERVED_INWARD_PREFIXES
            .iter()
            .find(|p| code.as_str().starts_with(*p))
    {
        problems.add(
            "order_code",
            format!("codes starting {prefix} are the OMS's own (transfers in transit, returns)"),
        );
    }
    let (Some(code), Some(order), true) = (code, order, problems.is_empty()) else {
        return Ok(Err(problems.into_vec()));
    };
    let resolve = async |conn: &mut AnyConnection| -> Result<_, StoreError> {
        let warehouse =
            warehouses::find_mapped(&mut *conn, client, order.warehouse.as_str()).await?;
        let party_known = match &order.party {
            None => true,
            Some(party) => match order.kind.party() {
                PartyKind::Supplier => {
                    partners::find(&mut *conn, client, PartnerKind::Supplier, party.as_str())
                        .await?
                        .is_some()
                }
                PartyKind::Customer => {
                    partners::find(&mut *conn, client, PartnerKind::Customer, party.as_str())
                        .await?
                        .is_some()
                }
                PartyKind::Warehouse => warehouses::find_mapped(&mut *conn, client, party.as_str())
                    .await?
                    .is_some(),
            },
        };
        let codes: Vec<&str> = order.lines.iter().map(|(sku, _)| sku.as_str()).collect();
        let sku_ids = skus::ids_by_code(conn, client, &codes).await?;
        Ok((warehouse, party_known, sku_ids))
    };
    let (warehouse, party_known, sku_ids) = resolve(conn).await?;
    if warehouse.is_none() {
        problems.add(
            "warehouse",
            format!("{} is not a warehouse of this client", order.warehouse),
        );
    }
    if !party_known {
        let what = match order.kind.party() {
            PartyKind::Supplier => "supplier",
            PartyKind::Customer => "customer",
            PartyKind::Warehouse => "warehouse of this client",
        };
        let party = order.party.as_ref().map(Code::as_str).unwrap_or_default();
        problems.add("party", format!("{party} is not a {what}"));
    }
    let mut lines = Vec::with_capacity(order.lines.len());
    for (index, (sku, qty)) in order.lines.iter().enumerate() {
        match sku_ids.get(sku.as_str()) {
            Some(id) => lines.push((*id, *qty)),
            None => problems.add(
                format!("lines[{index}].sku"),
                format!("{sku} is not a SKU of this client"),
            ),
        }
    }
    Ok(match warehouse {
        Some(warehouse) if problems.is_empty() => Ok(PreparedInwardOrder {
            code,
            kind: order.kind,
            warehouse: warehouse.id,
            party: order.party,
            lines,
        }),
        _ => Err(problems.into_vec()),
    })
}

/// Writes a prepared order; [`ApiError::Conflict`] when its code exists.
pub async fn write(
    conn: &mut AnyConnection,
    client: ClientId,
    order: &PreparedInwardOrder,
    at: i64,
) -> ApiResult<()> {
    inward::insert_order(
        conn,
        client,
        order.code.as_str(),
        order.kind.as_str(),
        order.warehouse,
        order.party.as_ref().map(Code::as_str),
        &order.lines,
        at,
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict(format!("inward order {} exists already", order.code))
        }
        other => other.into(),
    })?;
    Ok(())
}

pub async fn create(store: &Store, client: ClientId, fields: &Fields) -> ApiResult<InwardView> {
    let mut tx = store.begin_write().await?;
    let order = prepare(tx.conn(), client, fields)
        .await?
        .map_err(ApiError::invalid)?;
    write(tx.conn(), client, &order, now_micros()).await?;
    let view = view(tx.conn(), client, order.code.as_str()).await?;
    tx.commit().await?;
    Ok(view)
}

async fn view(conn: &mut AnyConnection, client: ClientId, code: &str) -> ApiResult<InwardView> {
    let order = inward::find_order(&mut *conn, client, code)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("inward order {code}")))?;
    let lines = inward::lines(conn, client, order.id).await?;
    Ok(InwardView { order, lines })
}

pub async fn get(store: &Store, client: ClientId, code: &str) -> ApiResult<InwardView> {
    let order = inward::find_order(store.pool(), client, code)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("inward order {code}")))?;
    let lines = inward::lines(store.pool(), client, order.id).await?;
    Ok(InwardView { order, lines })
}

/// The open order `code` and its lines inside `conn`'s transaction: 404 when missing, 409
/// when closed.
async fn open_order(
    conn: &mut AnyConnection,
    client: ClientId,
    code: &str,
) -> ApiResult<InwardView> {
    let view = view(conn, client, code).await?;
    if view.order.status != "OPEN" {
        return Err(ApiError::Conflict(format!("inward order {code} is closed")));
    }
    Ok(view)
}

/// The line of `view` for each requested SKU, refusing SKUs not on the order or named twice.
fn lines_for<'v>(
    view: &'v InwardView,
    requested: &[Fields],
    problems: &mut Problems,
) -> Vec<Option<&'v InwardLineRow>> {
    let by_sku: HashMap<&str, &InwardLineRow> =
        view.lines.iter().map(|l| (l.sku.as_str(), l)).collect();
    let mut seen = BTreeSet::new();
    requested
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let field = format!("lines[{index}].sku");
            let sku = line.get("sku").unwrap_or_default();
            if sku.is_empty() {
                problems.add(field, "is required");
                return None;
            }
            if !seen.insert(sku.clone()) {
                problems.add(field, format!("{sku} is named twice"));
                return None;
            }
            let found = by_sku.get(sku.as_str()).copied();
            if found.is_none() {
                problems.add(
                    field,
                    format!("{sku} is not on inward order {}", view.order.order_code),
                );
            }
            found
        })
        .collect()
}

fn requested_lines(fields: &Fields, known: &[&str]) -> ApiResult<Vec<Fields>> {
    refuse_unknown(fields, known, &[]).map_err(ApiError::invalid)?;
    let lines = fields.items("lines");
    if lines.is_empty() {
        return Err(ApiError::invalid_field(
            "lines",
            "at least one line is needed",
        ));
    }
    Ok(lines)
}

fn key(client: ClientId, order: &InwardOrderRow, line: &InwardLineRow) -> StockKey {
    StockKey {
        client,
        warehouse: order.warehouse_id,
        sku: line.sku_id,
    }
}

/// A movement the domain refused to build: a bug upstream, since quantities were checked.
fn built(movement: Result<Movement, oms_domain::inventory::MovementError>) -> ApiResult<Movement> {
    movement.map_err(|e| ApiError::Internal(format!("movement: {e}")))
}

/// A guarded write that found its row changed since it was read: the caller may retry.
fn raced(what: &str) -> ApiError {
    ApiError::Conflict(format!("{what} changed while this request ran; retry it"))
}

/// Receives goods against the order's lines: `{lines: [{sku, qty}]}`.
pub async fn receive(
    store: &Store,
    scope: &Scope,
    code: &str,
    fields: &Fields,
) -> ApiResult<InwardView> {
    let requested = requested_lines(fields, &["lines[].sku", "lines[].qty"])?;
    let excess_allowed = settings(store, scope.client).await?.excess_grn_allowed;
    let mut tx = store.begin_write().await?;
    let view = open_order(tx.conn(), scope.client, code).await?;
    let mut problems = Problems::new();
    let lines = lines_for(&view, &requested, &mut problems);
    let mut plan = Vec::new();
    for (index, (request, line)) in requested.iter().zip(lines).enumerate() {
        let qty = problems.take(
            &format!("lines[{index}].qty"),
            line_qty(request.get("qty").as_deref()),
        );
        if let (Some(line), Some(qty)) = (line, qty) {
            let mut counts = line.line;
            match counts.receive(qty, excess_allowed) {
                Ok(()) => plan.push((line, qty)),
                Err(e) => problems.add(format!("lines[{index}].qty"), e.to_string()),
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.into_vec()));
    }
    let at = now_micros();
    let reference = format!("inward:{code}");
    let entry = LedgerEntry {
        reference: &reference,
        note: None,
        actor: &scope.actor,
        at,
    };
    // Every key first, in the global order (see `stock::lock_keys`).
    let keys: Vec<StockKey> = plan
        .iter()
        .map(|(line, _)| key(scope.client, &view.order, line))
        .collect();
    stock::lock_keys(tx.conn(), keys).await?;
    let mut changes = StockChanges::new();
    for (line, qty) in plan {
        if !inward::receive(tx.conn(), line.id, qty, excess_allowed).await? {
            return Err(raced("the inward line"));
        }
        changes
            .apply(
                tx.conn(),
                key(scope.client, &view.order, line),
                &built(Movement::grn(qty))?,
                &entry,
            )
            .await?;
    }
    inward::touch(tx.conn(), view.order.id, at).await?;
    let after = self::view(tx.conn(), scope.client, code).await?;
    changes.announce(tx.conn(), scope.client, at).await?;
    tx.commit().await?;
    Ok(after)
}

/// Books QC results: `{lines: [{sku, pass, fail, fail_reason, lost}]}`.
pub async fn quality_check(
    store: &Store,
    scope: &Scope,
    code: &str,
    fields: &Fields,
) -> ApiResult<InwardView> {
    let requested = requested_lines(
        fields,
        &[
            "lines[].sku",
            "lines[].pass",
            "lines[].fail",
            "lines[].fail_reason",
            "lines[].lost",
        ],
    )?;
    let settings = settings(store, scope.client).await?;
    let mut tx = store.begin_write().await?;
    let view = open_order(tx.conn(), scope.client, code).await?;
    let mut problems = Problems::new();
    let lines = lines_for(&view, &requested, &mut problems);
    let mut plan = Vec::new();
    for (index, (request, line)) in requested.iter().zip(lines).enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        let pass = problems.take(&field("pass"), optional_qty(request.get("pass").as_deref()));
        let fail = problems.take(&field("fail"), optional_qty(request.get("fail").as_deref()));
        let lost = problems.take(&field("lost"), optional_qty(request.get("lost").as_deref()));
        let reason = request.get("fail_reason").filter(|r| !r.trim().is_empty());
        if let Some(fail) = fail
            && fail > 0
        {
            match &reason {
                None => problems.add(field("fail_reason"), "is required when units fail QC"),
                Some(reason) if !settings.is_qc_fail_reason(reason) => problems.add(
                    field("fail_reason"),
                    format!(
                        "{reason} is not one of {}",
                        settings.qc_fail_reasons.join(", ")
                    ),
                ),
                Some(_) => {}
            }
        }
        if let (Some(line), Some(pass), Some(fail), Some(lost)) = (line, pass, fail, lost) {
            let mut counts = line.line;
            match counts.quality_check(pass, fail, lost) {
                Ok(()) => plan.push((line, pass, fail, lost, reason)),
                Err(e) => problems.add(format!("lines[{index}]"), e.to_string()),
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.into_vec()));
    }
    let at = now_micros();
    let reference = format!("inward:{code}");
    let entry = LedgerEntry {
        reference: &reference,
        note: None,
        actor: &scope.actor,
        at,
    };
    let keys: Vec<StockKey> = plan
        .iter()
        .map(|(line, ..)| key(scope.client, &view.order, line))
        .collect();
    stock::lock_keys(tx.conn(), keys).await?;
    let mut changes = StockChanges::new();
    for (line, pass, fail, lost, reason) in plan {
        if !inward::quality_check(tx.conn(), line.id, pass, fail, lost).await? {
            return Err(raced("the inward line"));
        }
        let key = key(scope.client, &view.order, line);
        let mut movements = Vec::new();
        if pass > 0 {
            movements.push(built(Movement::qc_pass(pass))?);
        }
        if fail > 0 {
            let reason = reason.as_deref().unwrap_or_default();
            movements.push(built(Movement::qc_fail(reason, fail))?);
        }
        if lost > 0 {
            movements.push(built(Movement::lost_in_qc(lost))?);
        }
        for movement in &movements {
            changes.apply(tx.conn(), key, movement, &entry).await?;
        }
    }
    inward::touch(tx.conn(), view.order.id, at).await?;
    let after = self::view(tx.conn(), scope.client, code).await?;
    changes.announce(tx.conn(), scope.client, at).await?;
    tx.commit().await?;
    Ok(after)
}

/// Closes the order: no more GRN or QC. Closing a closed order changes nothing.
pub async fn close(store: &Store, client: ClientId, code: &str) -> ApiResult<InwardView> {
    let mut tx = store.begin_write().await?;
    let view = view(tx.conn(), client, code).await?;
    inward::close(tx.conn(), client, view.order.id, now_micros()).await?;
    let after = self::view(tx.conn(), client, code).await?;
    tx.commit().await?;
    Ok(after)
}
