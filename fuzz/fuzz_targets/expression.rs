//! An expression (`formula`, `visible_if`, `required_if`, flow `when`), as bytes:
//! UTF-8 → `meta::expr::Expr::compile`, then the publish-time checks and an evaluation
//! over a small record. Errors are expected; a panic is a bug, and so is refusing
//! an expression minijinja parses. Evaluation is fuel-limited, so a runaway
//! expression errors instead of hanging.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use metacrm::meta::expr::Expr;
use serde_json::{Map, Value, json};

static RECORD: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let record = json!({
        "id": 7,
        "owner": 1,
        "stage": "won",
        "created_at": "2024-03-05T01:30:00Z",
        "name": "深圳市震华信息技术有限公司",
        "amount": "1234.50",
        "quantity": 3,
        "price": 19.99,
        "discount": null,
        "active": true,
        "signed_on": "2024-01-31",
        "warranty_months": 13,
        "last_contact": "2024-03-05T09:30:00+08:00",
        "tags": ["a", "c"],
        "category": "nurture",
        "len": "a field named like a function"
    });
    let Value::Object(map) = record else {
        unreachable!()
    };
    map
});

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let expr = match Expr::compile(source) {
        Ok(expr) => expr,
        // Only said of what minijinja parses but the rewrite of its multiplications
        // (`meta::expr::repeat`) could not keep the same: such a formula is refused.
        Err(err) if err.contains("expression not understood") => {
            panic!("{source:?} parses but its rewrite does not: {err}")
        }
        Err(_) => return,
    };
    let _ = expr.variables();
    let _ = expr.unknown_filters_and_tests();
    let _ = expr.eval(&RECORD);
    let _ = expr.eval_bool(&Map::new());
});
