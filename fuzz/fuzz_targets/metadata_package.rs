//! A metadata package, as bytes: UTF-8 → JSON → `meta::parse_package` (serde into the
//! model, then every semantic check) → `catalog::Catalog::compile` for a package that
//! validated. Errors are expected; a panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use metacrm::catalog::Catalog;
use metacrm::meta;
use metacrm::store::plan::Archive;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let Ok(package) = meta::parse_package(&json) else {
        return;
    };
    // `validate` is what `parse_package` ran; calling it again must agree.
    assert!(meta::validate(&package).is_empty());
    // Validation promises compilation cannot fail on expressions; it must at least
    // never panic, whatever it returns.
    let _ = Catalog::compile(1, package, Archive::default());
});
