//! Suppliers and customers: the client's B2B partners, one table with a kind.

use oms_domain::masters::{Partner, PartnerKind};
use sqlx::AnyConnection;
use sqlx::{AnyExecutor, Row};

use crate::{ClientId, Placeholders, StoreResult, UPSERT_ROWS_MAX, like_contains, upsert_sql};

#[derive(Debug, Clone)]
pub struct PartnerRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub gstin: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<PartnerRow> {
    Ok(PartnerRow {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        pincode: row.try_get("pincode")?,
        gstin: row.try_get("gstin")?,
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const WRITTEN: &[&str] = &[
    "client_id",
    "kind",
    "code",
    "name",
    "address",
    "pincode",
    "gstin",
    "phone",
    "email",
    "created_at",
    "updated_at",
];
const _: () = assert!(WRITTEN.len() * UPSERT_ROWS_MAX < 32_766);

/// Creates or updates every partner given, in statements of at most [`UPSERT_ROWS_MAX`] rows.
pub async fn upsert_many(
    conn: &mut AnyConnection,
    client: ClientId,
    kind: PartnerKind,
    partners: &[(String, Partner)],
    at: i64,
) -> StoreResult<()> {
    let placeholders = Placeholders::of(conn);
    crate::rows::execute_chunks(&mut *conn, partners.chunks(UPSERT_ROWS_MAX), |chunk| {
        let sql = upsert_sql(
            placeholders,
            "partners",
            WRITTEN,
            &["client_id", "kind", "code"],
            chunk.len(),
        );
        let mut query = crate::generated(sql, chunk.len());
        for (code, partner) in chunk {
            query = query
                .bind(client.0)
                .bind(kind.as_str())
                .bind(code.clone())
                .bind(partner.name.clone())
                .bind(partner.address.clone())
                .bind(partner.pincode.clone())
                .bind(partner.gstin.clone())
                .bind(partner.phone.clone())
                .bind(partner.email.clone())
                .bind(at)
                .bind(at);
        }
        Ok(query)
    })
    .await?;
    Ok(())
}

/// Creates or updates one partner; true when it was created.
pub async fn upsert(
    conn: &mut AnyConnection,
    client: ClientId,
    kind: PartnerKind,
    code: &str,
    partner: &Partner,
    at: i64,
) -> StoreResult<bool> {
    let existed = find(&mut *conn, client, kind, code).await?.is_some();
    upsert_many(
        conn,
        client,
        kind,
        &[(code.to_owned(), partner.clone())],
        at,
    )
    .await?;
    Ok(!existed)
}

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, code, name, address, pincode, gstin, phone, email, created_at, \
             updated_at FROM partners ",
            $tail
        )
    };
}

pub async fn find<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    kind: PartnerKind,
    code: &str,
) -> StoreResult<Option<PartnerRow>> {
    const SQL: &str = select!("WHERE client_id = $1 AND kind = $2 AND code = $3");
    let row = sqlx::query(SQL)
        .bind(client.0)
        .bind(kind.as_str())
        .bind(code)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The client's partners of `kind` whose code or name contains `q`, in code order after
/// `after`.
pub async fn list<'e>(
    db: impl AnyExecutor<'e>,
    client: ClientId,
    kind: PartnerKind,
    q: &str,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<PartnerRow>> {
    const SQL: &str = select!(
        "WHERE client_id = $1 AND kind = $2 AND code > $3 \
         AND (LOWER(code) LIKE $4 ESCAPE '\\' OR LOWER(name) LIKE $4 ESCAPE '\\') \
         ORDER BY code LIMIT $5"
    );
    let rows = sqlx::query(SQL)
        .bind(client.0)
        .bind(kind.as_str())
        .bind(after)
        .bind(like_contains(q))
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(from_row).collect()
}
