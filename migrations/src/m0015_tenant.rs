//! The indexes the due list and the pool's reclaim can use. The index on an entity's
//! last contact was on the bare column, which neither can use: both filter and sort on
//! `COALESCE(last_contact_at, created_at)`, for owned records not deleted. It is
//! rebuilt on that expression, for those records, and a second one on the owner and
//! the expression serves a rep's own due list.
use sea_orm_migration::prelude::*;

use crate::index_name;
use crate::rebuild_index::{create, plain_indexes, rebuild};

#[derive(DeriveMigrationName)]
pub struct Migration;

const CONTACTABLE: &str = "WHERE \"owner\" IS NOT NULL AND \"deleted_at\" IS NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in plain_indexes(manager, "last_contact_at").await? {
            let by_last_contact =
                format!("((COALESCE(\"last_contact_at\", \"created_at\"))) {CONTACTABLE}");
            rebuild(manager, &index, &by_last_contact).await?;
            let by_owner = format!(
                "(\"owner\", (COALESCE(\"last_contact_at\", \"created_at\"))) {CONTACTABLE}"
            );
            let name = index_name(index.entity(), "_owner_last_contact", false);
            create(manager, &name, &index.table, &by_owner).await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The old index served no query; nothing to put back.
        Ok(())
    }
}
