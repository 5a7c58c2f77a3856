//! What the business process does when a user writes a record, inside the write's
//! transaction: an activity counts as a contact for the records it refers to, and
//! flows triggered by `create`/`update` start.

use sea_orm::DatabaseTransaction;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::meta::TriggerOn;
use crate::store::db::TenantDb;
use crate::workflow::approvals::Engine;
use crate::workflow::followups;

pub async fn after_write(
    txn: &DatabaseTransaction,
    db: &TenantDb,
    catalog: &Catalog,
    entity: &str,
    record: &Value,
    on: TriggerOn,
    user: i64,
) -> Result<()> {
    if on == TriggerOn::Create {
        followups::record_contact(txn, db, catalog, entity, record).await?;
    }
    Engine::new(db, catalog)
        .trigger(txn, entity, record, on, None, user)
        .await?;
    Ok(())
}
