//! Inventory by SKU: per warehouse its buckets and pools, and the SKU's latest ledger rows.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use oms_domain::access::Permission;
use oms_store::{panel, skus, stock};
use serde::Deserialize;

use crate::AppState;
use crate::panel::orders::when;
use crate::panel::session::Session;
use crate::panel::{Nav, PanelResult, encode, render};
use crate::service::stock::{InventoryOut, inventory_out, inventory_rows};

/// Ledger rows shown under a SKU.
const LEDGER_ROWS: i64 = 30;
/// SKUs listed when the search names none exactly.
const SKUS_LISTED: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub struct InventoryQuery {
    pub sku: Option<String>,
}

pub struct SkuLink {
    pub code: String,
    pub name: String,
    pub url: String,
}

pub struct LedgerLine {
    pub at: String,
    pub warehouse: String,
    pub movement: String,
    pub qty: i64,
    pub kind: String,
    pub reference: String,
    pub actor: String,
}

#[derive(Template)]
#[template(path = "inventory.html")]
struct InventoryPage {
    nav: Nav,
    sku: String,
    name: Option<String>,
    rows: Vec<InventoryOut>,
    matches: Vec<SkuLink>,
    ledger: Vec<LedgerLine>,
}

pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<InventoryQuery>,
) -> PanelResult<Response> {
    session.scope().require(Permission::Read)?;
    let sku = query.sku.unwrap_or_default().trim().to_owned();
    let pool = state.store.pool();
    let exact = if sku.is_empty() {
        None
    } else {
        skus::find(pool, session.client, &sku).await?
    };
    let (rows, ledger, matches) = match &exact {
        Some(found) => {
            let (rows, _) = stock::page(pool, session.client, &found.code, "", "", 1).await?;
            let rows = inventory_rows(rows)
                .into_iter()
                .map(|r| inventory_out(r.warehouse, r.sku, &r.balance))
                .collect();
            let ledger = panel::recent_ledger(pool, session.client, &found.code, LEDGER_ROWS)
                .await?
                .into_iter()
                .map(|l| LedgerLine {
                    at: when(l.at),
                    warehouse: l.warehouse,
                    movement: format!("{} → {}", l.from_bucket, l.to_bucket),
                    qty: l.qty,
                    kind: l.kind,
                    reference: l.reference,
                    actor: l.actor,
                })
                .collect();
            (rows, ledger, Vec::new())
        }
        None => {
            let matches = skus::list(pool, session.client, &sku, "", SKUS_LISTED)
                .await?
                .into_iter()
                .map(|s| SkuLink {
                    url: format!("/inventory?sku={}", encode(&s.code)),
                    code: s.code,
                    name: s.name,
                })
                .collect();
            (Vec::new(), Vec::new(), matches)
        }
    };
    let page = InventoryPage {
        nav: Nav::new(&session, "inventory"),
        name: exact.map(|s| s.name),
        sku,
        rows,
        matches,
        ledger,
    };
    Ok(render(StatusCode::OK, &page))
}
