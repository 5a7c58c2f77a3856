//! What the permission gate grants for one request on one entity: the scope and its
//! owner set, the row predicate, and the field rules. Record operations take an
//! [`Access`] and apply it; they never decide permissions themselves.

use std::collections::BTreeSet;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait};

use crate::auth::context::Gate;
use crate::meta::Scope;
use crate::store::schema;

#[derive(Debug, Clone)]
pub struct Access {
    /// The acting user (owner of new records, `{"user": "me"}` in filters, audit).
    pub user_id: i64,
    pub scope: Scope,
    /// Owners whose records the scope reaches; `None` means every owner.
    pub owners: Option<BTreeSet<i64>>,
    /// Rows the user may touch (`owner IN owners`); `None` means every row.
    pub rows: Option<Condition>,
    /// Fields masked in every output, and not usable in filters or sorts.
    pub hidden_fields: BTreeSet<String>,
    /// Fields the user may not write.
    pub readonly_fields: BTreeSet<String>,
    /// The platform acting on its own behalf (a flow's `on_approve`, a scheduled job):
    /// may also write fields the metadata marks `read_only`.
    pub system: bool,
    /// The gate that granted this access, for what runs on the user's behalf inside
    /// the operation and reads other entities (a hook's `get`). `None`: the platform
    /// itself, which reads everything.
    pub gate: Option<Gate>,
}

/// Whether the owner predicate of a scope may lead a query's plan through the owner
/// index. SQLite's planner estimates an `IN` list from an average per owner and never
/// counts on a `LIMIT`: for an owner set holding a large share of the records (a
/// manager's region) it read and sorted every record the set owns instead of walking
/// the index of the list's sort or filter and stopping at the page's end. Such sets
/// are written so that no index serves them (`+owner IN …`) on SQLite; PostgreSQL's
/// planner, with per-value statistics, chooses well by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerIndex {
    Use,
    Avoid,
}

/// The user id audit rows carry for what the platform does itself.
pub const SYSTEM_USER: i64 = 0;

impl Access {
    /// Full access to every row and field (admins; system actions).
    pub fn full(user_id: i64) -> Access {
        Access {
            user_id,
            scope: Scope::All,
            owners: None,
            rows: None,
            hidden_fields: BTreeSet::new(),
            readonly_fields: BTreeSet::new(),
            system: false,
            gate: None,
        }
    }

    /// The platform's own identity: every row and field, `read_only` fields included.
    pub fn system() -> Access {
        Access {
            system: true,
            ..Access::full(SYSTEM_USER)
        }
    }

    /// Access within a scope's owners, with field rules. Hidden fields are read-only
    /// too: nobody writes what they cannot see.
    pub fn scoped(
        user_id: i64,
        scope: Scope,
        owners: Option<BTreeSet<i64>>,
        owner_index: OwnerIndex,
        hidden_fields: BTreeSet<String>,
        mut readonly_fields: BTreeSet<String>,
    ) -> Access {
        let rows = owners.as_ref().map(|owners| {
            let owner = match owner_index {
                OwnerIndex::Use => Expr::col(Alias::new(schema::OWNER)),
                // SQLite's way of saying "no index for this term".
                OwnerIndex::Avoid => Expr::cust(format!("+\"{}\"", schema::OWNER)),
            };
            Condition::all().add(owner.is_in(owners.iter().copied()))
        });
        readonly_fields.extend(hidden_fields.iter().cloned());
        Access {
            user_id,
            scope,
            owners,
            rows,
            hidden_fields,
            readonly_fields,
            system: false,
            gate: None,
        }
    }

    /// Whether records owned by `owner` are within reach.
    pub fn reaches_owner(&self, owner: i64) -> bool {
        self.owners
            .as_ref()
            .is_none_or(|owners| owners.contains(&owner))
    }
}
