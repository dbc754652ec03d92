//! Webhook subscribers: where a client's events are pushed, signed with its secret.

use oms_domain::code::Code;
use oms_domain::validation::{Problems, required_text};
use oms_store::webhooks::{self, WebhookRow};
use oms_store::{ClientId, Store};

use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult};
use crate::fields::Fields;
use crate::service::refuse_unknown;

/// Every event type the OMS emits; a subscriber names some, or none for all.
pub const EVENT_TYPES: &[&str] = &[
    "order.allocated",
    "order.cancelled",
    "shipment.released",
    "shipment.cancelled",
    "shipment.picked",
    "shipment.packed",
    "shipment.shipped",
    "shipment.delivered",
    "shipment.rto",
];

pub const SECRET_CHARS_MIN: usize = 16;

/// Creates or updates subscriber `code`: `{url, secret, event_types: [..]}`.
pub async fn put(
    store: &Store,
    client: ClientId,
    code: &Code,
    fields: &Fields,
) -> ApiResult<(WebhookRow, bool)> {
    refuse_unknown(fields, &["url", "secret", "event_types[]"], &[]).map_err(ApiError::invalid)?;
    let mut problems = Problems::new();
    let url = problems.take(
        "url",
        required_text(fields.get("url").as_deref(), 2_000).and_then(|url| {
            if url.starts_with("http://") && url.len() > "http://".len() {
                Ok(url)
            } else {
                Err("must be an http:// URL (delivery over https is not built in yet)".to_owned())
            }
        }),
    );
    let secret = problems.take(
        "secret",
        required_text(fields.get("secret").as_deref(), 200).and_then(|s| {
            if s.chars().count() >= SECRET_CHARS_MIN {
                Ok(s)
            } else {
                Err(format!("must be at least {SECRET_CHARS_MIN} characters"))
            }
        }),
    );
    let types = fields.texts("event_types");
    for (index, event_type) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&event_type.as_str()) {
            problems.add(
                format!("event_types[{index}]"),
                format!(
                    "{event_type} is not an event type ({})",
                    EVENT_TYPES.join(", ")
                ),
            );
        }
    }
    let (Some(url), Some(secret), true) = (url, secret, problems.is_empty()) else {
        return Err(ApiError::invalid(problems.into_vec()));
    };
    let types = serde_json::to_string(&types).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut tx = store.begin_write().await?;
    let created = webhooks::upsert(
        tx.conn(),
        client,
        code.as_str(),
        &url,
        &secret,
        &types,
        now_micros(),
    )
    .await?;
    let row = webhooks::find(tx.conn(), client, code.as_str())
        .await?
        .ok_or_else(|| ApiError::Internal("webhook vanished after upsert".into()))?;
    tx.commit().await?;
    Ok((row, created))
}

pub async fn find(store: &Store, client: ClientId, code: &str) -> ApiResult<WebhookRow> {
    webhooks::find(store.pool(), client, code)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook {code}")))
}
