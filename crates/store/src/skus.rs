//! SKUs: a client's products. Written in multi-row statements so a 100,000-row upload is a
//! hundred statements in one transaction, not a hundred thousand.

use oms_domain::sku::Sku;
use sqlx::AnyConnection;
use sqlx::{AnyExecutor, Row};

use crate::{
    ClientId, Placeholders, StoreError, StoreResult, UPSERT_ROWS_MAX, like_contains, upsert_sql,
};

#[derive(Debug, Clone)]
pub struct SkuRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub mrp_minor: i64,
    pub price_minor: Option<i64>,
    pub tax_rate_bp: Option<i64>,
    pub hsn: Option<String>,
    pub weight_grams: Option<i64>,
    /// The attributes as a JSON object.
    pub attributes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<SkuRow> {
    Ok(SkuRow {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        mrp_minor: row.try_get("mrp_minor")?,
        price_minor: row.try_get("price_minor")?,
        tax_rate_bp: row.try_get("tax_rate_bp")?,
        hsn: row.try_get("hsn")?,
        weight_grams: row.try_get("weight_grams")?,
        attributes: row.try_get("attributes")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: [&str; 11] = [
    "client_id",
    "code",
    "name",
    "mrp_minor",
    "price_minor",
    "tax_rate_bp",
    "hsn",
    "weight_grams",
    "attributes",
    "created_at",
    "updated_at",
];
const _: () = assert!(COLUMNS.len() * UPSERT_ROWS_MAX < 32_766);

/// Creates or updates every SKU given, in statements of at most [`UPSERT_ROWS_MAX`] rows.
/// Codes must be distinct: PostgreSQL refuses one statement touching a row twice.
pub async fn upsert_many(
    conn: &mut AnyConnection,
    client: ClientId,
    skus: &[(String, Sku)],
    at: i64,
) -> StoreResult<()> {
    let placeholders = Placeholders::of(conn);
    crate::rows::execute_chunks(&mut *conn, skus.chunks(UPSERT_ROWS_MAX), |chunk| {
        let sql = upsert_sql(
            placeholders,
            "skus",
            &COLUMNS,
            &["client_id", "code"],
            chunk.len(),
        );
        let mut query = crate::generated(sql, chunk.len());
        for (code, sku) in chunk {
            let attributes = serde_json::to_string(&sku.attributes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            query = query
                .bind(client.0)
                .bind(code.clone())
                .bind(sku.name.clone())
                .bind(sku.mrp_minor)
                .bind(sku.price_minor)
                .bind(sku.tax_rate_bp)
                .bind(sku.hsn.clone())
                .bind(sku.weight_grams)
                .bind(attributes)
                .bind(at)
                .bind(at);
        }
        Ok(query)
    })
    .await?;
    Ok(())
}

/// Creates or updates one SKU; true when it was created.
pub async fn upsert(
    conn: &mut AnyConnection,
    client: ClientId,
    code: &str,
    sku: &Sku,
    at: i64,
) -> StoreResult<bool> {
    let existed = find(&mut *conn, client, code).await?.is_some();
    upsert_many(conn, client, &[(code.to_owned(), sku.clone())], at).await?;
    Ok(!existed)
}

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, code, name, mrp_minor, price_minor, tax_rate_bp, hsn, weight_grams, \
             attributes, created_at, updated_at FROM skus ",
            $tail
        )
    };
}

pub async fn find<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    code: &str,
) -> StoreResult<Option<SkuRow>> {
    const SQL: &str = select!("WHERE client_id = $1 AND code = $2");
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The client's SKUs whose code or name contains `q` (any case), in code order after `after`.
pub async fn list<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    q: &str,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<SkuRow>> {
    const SQL: &str = select!(
        "WHERE client_id = $1 AND code > $2 \
         AND (LOWER(code) LIKE $3 ESCAPE '\\' OR LOWER(name) LIKE $3 ESCAPE '\\') \
         ORDER BY code LIMIT $4"
    );
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(after)
        .bind(like_contains(q))
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The read of [`ids_by_code`] for `codes` codes: `$1` the client, then the codes.
pub(crate) fn ids_by_code_sql(placeholders: Placeholders, codes: usize) -> String {
    crate::json_rows_sql(
        placeholders,
        &["id", "code"],
        &format!(
            "SELECT id, code FROM skus WHERE client_id = $1 AND code {}",
            crate::in_list::<&str>(placeholders, codes)
        ),
    )
}

/// The ids of the client's SKUs among `codes`, by code; codes that are no SKU are absent.
pub async fn ids_by_code(
    conn: &mut AnyConnection,
    client: ClientId,
    codes: &[&str],
) -> StoreResult<std::collections::HashMap<String, i64>> {
    let placeholders = Placeholders::of(conn);
    let rows: Vec<(i64, String)> =
        crate::fetch_json_chunks(conn, codes.chunks(UPSERT_ROWS_MAX), |chunk| {
            let sql = ids_by_code_sql(placeholders, chunk.len());
            crate::list_query(placeholders, &sql, client, chunk)
        })
        .await?;
    Ok(rows.into_iter().map(|(id, code)| (code, id)).collect())
}

pub async fn count<'e>(db: impl AnyExecutor<'e>, client: ClientId) -> StoreResult<i64> {
    const SQL: &str = "SELECT COUNT(*) AS n FROM skus WHERE client_id = $1";
    let row = sqlx::query(SQL).bind(client.0).fetch_one(db).await?;
    Ok(row.try_get("n")?)
}
