//! Any bytes as the body of `POST /api/v1/orders`: parsing, flattening and validation never
//! panic, and a body that validates validates the same way again (same order, same hash,
//! which is what makes a repeated order answer the stored one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oms_app::fields::Fields;
use oms_app::service::orders::validate;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(fields) = Fields::from_json(&body) else {
        return;
    };
    if let Ok((order, hash)) = validate(&fields) {
        let (again, again_hash) = validate(&fields).expect("valid once, valid twice");
        assert_eq!(hash, again_hash, "the body hash is stable");
        assert_eq!(format!("{order:?}"), format!("{again:?}"));
    }
});
