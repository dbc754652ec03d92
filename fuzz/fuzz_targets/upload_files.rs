//! Any bytes as an uploaded CSV file of any kind (the first byte chooses the kind), applied
//! by the real upload code to a real SQLite database holding a client with a warehouse, a
//! channel, SKUs and a supplier. Never a panic, never a 5xx; a refused file changes nothing
//! (no other connection committed: SQLite's `data_version` seen from a second connection
//! is unchanged); after an accepted file every inventory invariant holds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oms_app::auth::Scope;
use oms_app::fields::Fields;
use oms_app::service;
use oms_app::upload::{self, UploadKind};
use oms_domain::code::Code;
use oms_store::{Store, StoreOptions, warehouses};

/// Rows per file, small so a long file is refused quickly rather than slowly applied.
const ROWS_MAX: usize = 200;

struct World {
    runtime: tokio::runtime::Runtime,
    store: Store,
    /// A second connection to the same file, to see whether anything committed.
    observer: Store,
    scope: Scope,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/fuzz.db", dir.path().display());
        let (store, observer, scope) = runtime.block_on(async {
            let store = Store::connect(&url, &StoreOptions::default())
                .await
                .expect("store");
            store.migrate().await.expect("migrate");
            let observer = Store::connect(
                &url,
                &StoreOptions {
                    max_connections: 1,
                    exclusive: false,
                    ..StoreOptions::default()
                },
            )
            .await
            .expect("observer");
            let scope = seed(&store).await;
            (store, observer, scope)
        });
        World {
            runtime,
            store,
            observer,
            scope,
            _dir: dir,
        }
    })
}

fn code(text: &str) -> Code {
    Code::parse(text).expect("a code")
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    Fields::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

/// Client ACME with warehouse BLR1, channel MYNTRA, SKUs TEE and JEANS, supplier KNITS: the
/// names the seed files use, so fuzzed files reach the writing code.
async fn seed(store: &Store) -> Scope {
    let client = service::create_client(store, &code("acme"), Some("Acme"))
        .await
        .expect("client");
    let (warehouse, _) = service::put_warehouse(
        store,
        &code("BLR1"),
        &fields(&[
            ("name", "Bengaluru"),
            ("type", "WAREHOUSE"),
            ("pincode", "560001"),
            ("lat", "12.97"),
            ("lon", "77.59"),
        ]),
    )
    .await
    .expect("warehouse");
    let client_id = client.id;
    let mut tx = store.begin_write().await.expect("tx");
    warehouses::map_to_client(tx.conn(), client_id, warehouse.id, 0)
        .await
        .expect("map");
    tx.commit().await.expect("commit");
    service::put_channel(
        store,
        client_id,
        &code("MYNTRA"),
        &fields(&[("name", "Myntra"), ("type", "MARKETPLACE")]),
    )
    .await
    .expect("channel");
    let scope = Scope {
        client: client_id,
        client_code: "acme".into(),
        role: None,
        actor: "fuzz".into(),
    };
    for (kind, file) in [
        (
            UploadKind::Skus,
            "code,name,mrp\nTEE,Tee,499\nJEANS,Jeans,1999\n",
        ),
        (UploadKind::Suppliers, "code,name\nKNITS,Knits\n"),
    ] {
        upload::apply(store, &scope, kind, file.as_bytes(), ROWS_MAX)
            .await
            .expect("seed file");
    }
    scope
}

async fn data_version(observer: &Store) -> i64 {
    sqlx::query_scalar::<_, i64>("PRAGMA data_version")
        .fetch_one(observer.pool())
        .await
        .expect("data_version")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let kind = UploadKind::ALL[usize::from(selector) % UploadKind::ALL.len()];
    let world = world();
    world.runtime.block_on(async {
        let before = data_version(&world.observer).await;
        let answer = upload::apply(&world.store, &world.scope, kind, file, ROWS_MAX).await;
        let after = data_version(&world.observer).await;
        match answer {
            Ok(_) => {
                let report = oms_app::check::run(&world.store).await.expect("check");
                assert!(
                    report.breaches.is_empty(),
                    "{kind:?}: invariants broken: {:?}",
                    report.breaches
                );
            }
            Err(error) => {
                assert!(
                    error.status().as_u16() < 500,
                    "{kind:?}: a server error: {error}"
                );
                assert_eq!(
                    before, after,
                    "{kind:?}: a refused file changed the database: {error}"
                );
            }
        }
    });
});
