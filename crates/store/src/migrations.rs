//! Migrations, embedded in the binary: one folder per backend, kept in lockstep.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::Backend;

struct Embedded {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! embedded {
    ($version:literal, $name:literal, $file:literal) => {
        Embedded {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $file)),
            postgres: include_str!(concat!("../migrations/postgres/", $file)),
        }
    };
}

const EMBEDDED: &[Embedded] = &[
    embedded!(1, "spine", "0001_spine.sql"),
    embedded!(2, "inventory", "0002_inventory.sql"),
    embedded!(3, "orders", "0003_orders.sql"),
    embedded!(4, "fulfilment", "0004_fulfilment.sql"),
    embedded!(5, "webhooks", "0005_webhooks.sql"),
    embedded!(6, "documents", "0006_documents.sql"),
    embedded!(7, "panel", "0007_panel.sql"),
    embedded!(8, "search", "0008_search.sql"),
    embedded!(9, "order_reads", "0009_order_reads.sql"),
    embedded!(10, "update_room", "0010_update_room.sql"),
    embedded!(11, "fewer_index_writes", "0011_fewer_index_writes.sql"),
    embedded!(12, "line_room", "0012_line_room.sql"),
];

/// `NNNN_name.sql` for every migration, in order: what both folders must hold.
pub const MIGRATION_NAMES: &[&str] = &[
    "0001_spine.sql",
    "0002_inventory.sql",
    "0003_orders.sql",
    "0004_fulfilment.sql",
    "0005_webhooks.sql",
    "0006_documents.sql",
    "0007_panel.sql",
    "0008_search.sql",
    "0009_order_reads.sql",
    "0010_update_room.sql",
    "0011_fewer_index_writes.sql",
    "0012_line_room.sql",
];

pub(crate) fn migrator(backend: Backend) -> Migrator {
    migrator_through(backend, i64::MAX)
}

/// The migrations up to and including version `last`.
fn migrator_through(backend: Backend, last: i64) -> Migrator {
    let migrations = EMBEDDED
        .iter()
        .filter(|m| m.version <= last)
        .map(|m| {
            let sql = match backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            Migration::new(
                m.version,
                Cow::Borrowed(m.name),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(backend: &str) -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/");
        let mut names: Vec<String> = std::fs::read_dir(format!("{dir}{backend}"))
            .expect("migrations folder")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_backends_hold_the_same_migrations_and_all_are_embedded() {
        let sqlite = folder("sqlite");
        assert_eq!(sqlite, folder("postgres"));
        assert_eq!(sqlite, MIGRATION_NAMES);
        assert_eq!(EMBEDDED.len(), MIGRATION_NAMES.len());
        for (index, (embedded, name)) in EMBEDDED.iter().zip(MIGRATION_NAMES).enumerate() {
            let version = i64::try_from(index + 1).expect("small");
            assert_eq!(embedded.version, version);
            assert_eq!(*name, format!("{version:04}_{}.sql", embedded.name));
        }
    }

    /// Migration 11 rebuilds SQLite's stock table in another key order: the balances held
    /// before it are there after it, and a stock row still cannot name another client's
    /// SKU.
    async fn stock_survives_migration_11(url: &str) {
        use sqlx::Row;

        use crate::{Store, StoreOptions};
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        migrator_through(store.backend(), 10)
            .run(store.pool())
            .await
            .expect("migrations 1-10");
        let id = async |sql: &str| -> i64 {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(store.pool())
                .await
                .expect("insert")
                .try_get("id")
                .expect("id")
        };
        let mut clients = Vec::new();
        for code in ["A", "B"] {
            clients.push(
                id(&format!(
                    "INSERT INTO clients (code, name, settings, created_at, updated_at) \
                     VALUES ('{code}', '{code}', '{{}}', 0, 0) RETURNING id"
                ))
                .await,
            );
        }
        let warehouse = id(
            "INSERT INTO warehouses (code, name, kind, pincode, priority, \
                            created_at, updated_at) VALUES ('W1', 'W', 'WAREHOUSE', '560001', \
                            1, 0, 0) RETURNING id",
        )
        .await;
        let mut skus = Vec::new();
        for client in &clients {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO client_warehouses (client_id, warehouse_id, created_at) \
                 VALUES ({client}, {warehouse}, 0)"
            )))
            .execute(store.pool())
            .await
            .expect("link");
            skus.push(
                id(&format!(
                    "INSERT INTO skus (client_id, code, name, mrp_minor, attributes, \
                     created_at, updated_at) VALUES ({client}, 'S1', 'S', 100, '{{}}', 0, 0) \
                     RETURNING id"
                ))
                .await,
            );
        }
        let (a, sku_a, sku_b) = (clients[0], skus[0], skus[1]);
        let before = [
            (a, warehouse, sku_a, "AVAILABLE:COMMON", 7),
            (a, warehouse, sku_a, "ALLOCATED:COMMON", 2),
            (clients[1], warehouse, sku_b, "QC_PENDING", 5),
        ];
        for (client, warehouse, sku, bucket, qty) in before {
            sqlx::query(
                "INSERT INTO stock (client_id, warehouse_id, sku_id, bucket, qty) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(client)
            .bind(warehouse)
            .bind(sku)
            .bind(bucket)
            .bind(qty)
            .execute(store.pool())
            .await
            .expect("stock");
        }
        store.migrate().await.expect("migration 11");
        let after: Vec<(i64, i64, i64, String, i64)> = sqlx::query(
            "SELECT client_id, warehouse_id, sku_id, bucket, qty FROM stock \
             ORDER BY client_id, bucket",
        )
        .fetch_all(store.pool())
        .await
        .expect("stock after")
        .iter()
        .map(|row| {
            (
                row.try_get("client_id").expect("client"),
                row.try_get("warehouse_id").expect("warehouse"),
                row.try_get("sku_id").expect("sku"),
                row.try_get("bucket").expect("bucket"),
                row.try_get("qty").expect("qty"),
            )
        })
        .collect();
        let mut expected: Vec<(i64, i64, i64, String, i64)> = before
            .iter()
            .map(|(c, w, s, b, q)| (*c, *w, *s, (*b).to_owned(), *q))
            .collect();
        expected.sort_by(|x, y| (x.0, &x.3).cmp(&(y.0, &y.3)));
        assert_eq!(after, expected);
        let crossing = sqlx::query(
            "INSERT INTO stock (client_id, warehouse_id, sku_id, bucket, qty) \
             VALUES ($1, $2, $3, 'QC_PENDING', 1)",
        )
        .bind(a)
        .bind(warehouse)
        .bind(sku_b)
        .execute(store.pool())
        .await;
        assert!(
            crossing.is_err(),
            "client A's stock row named client B's SKU"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_stock_survives_migration_11() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        stock_survives_migration_11(&url).await;
    }

    #[tokio::test]
    async fn postgres_stock_survives_migration_11() {
        stock_survives_migration_11(&crate::test_support::fresh_postgres().await).await;
    }
}
