//! What the permission gate grants for one request on one entity: the row predicate
//! and the field rules. Record operations take an [`Access`] and apply it; they never
//! decide permissions themselves.

use std::collections::BTreeSet;

use sea_orm::sea_query::Condition;

#[derive(Debug, Clone)]
pub struct Access {
    /// The acting user (owner of new records, `{"user": "me"}` in filters, audit).
    pub user_id: i64,
    /// Rows the user may touch; `None` means every row.
    pub rows: Option<Condition>,
    /// Fields masked in every output.
    pub hidden_fields: BTreeSet<String>,
    /// Fields the user may not write.
    pub readonly_fields: BTreeSet<String>,
}

impl Access {
    /// Full access to every row and field (admins; system actions).
    pub fn full(user_id: i64) -> Access {
        Access {
            user_id,
            rows: None,
            hidden_fields: BTreeSet::new(),
            readonly_fields: BTreeSet::new(),
        }
    }
}
