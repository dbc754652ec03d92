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
];

pub(crate) fn migrator(backend: Backend) -> Migrator {
    let migrations = EMBEDDED
        .iter()
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
}
