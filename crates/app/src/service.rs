//! Use cases: each opens its transaction, asks the domain, writes what the domain decided,
//! and commits. Edges (the JSON API and uploads) call these with [`Fields`], so a JSON body
//! and a CSV row go through the same validation.

pub mod allocate;
pub mod documents;
pub mod fulfilment;
pub mod intake;
pub mod inward;
pub mod orders;
pub mod stock;
pub mod webhooks;

use oms_domain::code::Code;
use oms_domain::masters::{Channel, PartnerDraft, PartnerKind, WarehouseDraft};
use oms_domain::settings::{ClientSettings, SettingsChange};
use oms_domain::sku::SkuDraft;
use oms_domain::validation::FieldError;
use oms_store::{ClientId, Store, channels, clients, partners, skus, warehouses};

use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;

/// The fields a SKU accepts, besides `attributes.<name>`.
pub const SKU_FIELDS: &[&str] = &["name", "mrp", "price", "tax_rate", "hsn", "weight_grams"];
pub const PARTNER_FIELDS: &[&str] = &["name", "address", "pincode", "gstin", "phone", "email"];
pub const WAREHOUSE_FIELDS: &[&str] = &[
    "name", "type", "address", "pincode", "lat", "lon", "priority",
];
pub const CHANNEL_FIELDS: &[&str] = &["name", "type"];

/// Drops a large piece of work's rows on a blocking thread once they are written, when
/// there are `rows` of them or more: freeing a 100,000-order pass's millions of strings,
/// rows and maps took ~0.15 s that its transaction waited for, and a 100,000-row file's
/// ~0.2 s that its answer waited for (measured); a small one gains nothing from the
/// hand-off. Outside a runtime it drops them at once.
pub(crate) fn drop_aside<T: Send + 'static>(rows: usize, value: T) {
    if rows >= DROP_ASIDE_ROWS
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn_blocking(move || drop(value));
    }
}

/// How many rows make a piece of work large enough for [`drop_aside`].
const DROP_ASIDE_ROWS: usize = 10_000;

pub fn sku_draft(fields: &Fields) -> Result<SkuDraft, Vec<FieldError>> {
    refuse_unknown(fields, SKU_FIELDS, &["attributes"])?;
    Ok(SkuDraft {
        name: fields.get("name"),
        mrp: fields.get("mrp"),
        price: fields.get("price"),
        tax_rate: fields.get("tax_rate"),
        hsn: fields.get("hsn"),
        weight_grams: fields.get("weight_grams"),
        attributes: fields.under("attributes"),
    })
}

pub fn partner_draft(fields: &Fields) -> Result<PartnerDraft, Vec<FieldError>> {
    refuse_unknown(fields, PARTNER_FIELDS, &[])?;
    Ok(PartnerDraft {
        name: fields.get("name"),
        address: fields.get("address"),
        pincode: fields.get("pincode"),
        gstin: fields.get("gstin"),
        phone: fields.get("phone"),
        email: fields.get("email"),
    })
}

pub(crate) fn refuse_unknown(
    fields: &Fields,
    known: &[&str],
    open: &[&str],
) -> Result<(), Vec<FieldError>> {
    let unknown = fields.unknown(known, open);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown)
    }
}

/// The client's settings as stored.
pub async fn settings(store: &Store, client: ClientId) -> ApiResult<ClientSettings> {
    let row = clients::find_by_id(store.pool(), client)
        .await?
        .ok_or_else(|| ApiError::NotFound("client".into()))?;
    parse_settings(&row.settings)
}

fn parse_settings(json: &str) -> ApiResult<ClientSettings> {
    serde_json::from_str(json).map_err(|e| ApiError::Internal(format!("stored settings: {e}")))
}

/// Applies a settings change, validated whole against the current settings.
pub async fn change_settings(
    store: &Store,
    client: ClientId,
    change: SettingsChange,
) -> ApiResult<ClientSettings> {
    let mut tx = store.begin_write().await?;
    let current = parse_settings(&clients::settings_for_update(tx.conn(), client).await?)?;
    let next = current.changed(change).map_err(ApiError::invalid)?;
    let json = serde_json::to_string(&next).map_err(|e| ApiError::Internal(e.to_string()))?;
    clients::update_settings(tx.conn(), client, &json, now_micros()).await?;
    tx.commit().await?;
    Ok(next)
}

pub async fn create_client(
    store: &Store,
    code: &Code,
    name: Option<&str>,
) -> ApiResult<clients::ClientRow> {
    let client = oms_domain::masters::Client::validate(name).map_err(ApiError::invalid)?;
    let settings = serde_json::to_string(&ClientSettings::default())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut tx = store.begin_write().await?;
    let row = clients::insert(
        tx.conn(),
        code.as_str(),
        &client.name,
        &settings,
        now_micros(),
    )
    .await
    .map_err(|e| match e {
        oms_store::StoreError::Conflict(_) => {
            ApiError::Conflict(format!("client {code} exists already"))
        }
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(row)
}

pub async fn put_warehouse(
    store: &Store,
    code: &Code,
    fields: &Fields,
) -> ApiResult<(warehouses::WarehouseRow, bool)> {
    refuse_unknown(fields, WAREHOUSE_FIELDS, &[]).map_err(ApiError::invalid)?;
    let warehouse = WarehouseDraft {
        name: fields.get("name"),
        kind: fields.get("type"),
        address: fields.get("address"),
        pincode: fields.get("pincode"),
        lat: fields.get("lat"),
        lon: fields.get("lon"),
        priority: fields.get("priority"),
    }
    .validate()
    .map_err(ApiError::invalid)?;
    let mut tx = store.begin_write().await?;
    let created = warehouses::upsert(tx.conn(), code.as_str(), &warehouse, now_micros()).await?;
    let row = warehouses::find(tx.conn(), code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("warehouse vanished after upsert".into()))?;
    tx.commit().await?;
    Ok((row, created))
}

/// Unmaps a warehouse from a client; refused (409) once the client has orders, inward
/// orders or stock movements there, which must keep pointing at a warehouse of their client.
pub async fn unmap_warehouse(
    store: &Store,
    client: ClientId,
    warehouse: &warehouses::WarehouseRow,
) -> ApiResult<bool> {
    let mut tx = store.begin_write().await?;
    let in_use = || {
        ApiError::Conflict(format!(
            "warehouse {} holds orders, inward orders or stock of this client and stays mapped",
            warehouse.code
        ))
    };
    if oms_store::stock::warehouse_in_use(tx.conn(), client, warehouse.id).await? {
        return Err(in_use());
    }
    let removed = warehouses::unmap_from_client(tx.conn(), client, warehouse.id)
        .await
        .map_err(|e| match e {
            oms_store::StoreError::Constraint(_) => in_use(),
            other => other.into(),
        })?;
    tx.commit().await?;
    Ok(removed)
}

pub async fn put_channel(
    store: &Store,
    client: ClientId,
    code: &Code,
    fields: &Fields,
) -> ApiResult<(channels::ChannelRow, bool)> {
    refuse_unknown(fields, CHANNEL_FIELDS, &[]).map_err(ApiError::invalid)?;
    let channel = Channel::validate(fields.get("name").as_deref(), fields.get("type").as_deref())
        .map_err(ApiError::invalid)?;
    let mut tx = store.begin_write().await?;
    let created =
        channels::upsert(tx.conn(), client, code.as_str(), &channel, now_micros()).await?;
    let row = channels::find(tx.conn(), client, code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("channel vanished after upsert".into()))?;
    tx.commit().await?;
    Ok((row, created))
}

pub async fn put_sku(
    store: &Store,
    client: ClientId,
    code: &Code,
    fields: &Fields,
) -> ApiResult<(skus::SkuRow, bool)> {
    let settings = settings(store, client).await?;
    let sku = sku_draft(fields)
        .and_then(|draft| draft.validate(&settings))
        .map_err(ApiError::invalid)?;
    let mut tx = store.begin_write().await?;
    let created = skus::upsert(tx.conn(), client, code.as_str(), &sku, now_micros()).await?;
    let row = skus::find(tx.conn(), client, code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("sku vanished after upsert".into()))?;
    tx.commit().await?;
    Ok((row, created))
}

pub async fn put_partner(
    store: &Store,
    client: ClientId,
    kind: PartnerKind,
    code: &Code,
    fields: &Fields,
) -> ApiResult<(partners::PartnerRow, bool)> {
    let partner = partner_draft(fields)
        .and_then(|draft| draft.validate())
        .map_err(ApiError::invalid)?;
    let mut tx = store.begin_write().await?;
    let created = partners::upsert(
        tx.conn(),
        client,
        kind,
        code.as_str(),
        &partner,
        now_micros(),
    )
    .await?;
    let row = partners::find(tx.conn(), client, kind, code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("partner vanished after upsert".into()))?;
    tx.commit().await?;
    Ok((row, created))
}
