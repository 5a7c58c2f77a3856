//! The index on an entity's last contact becomes the one the due list and the pool's
//! reclaim can use: on `COALESCE(last_contact_at, created_at)` for owned records not
//! deleted, instead of on the bare column (which neither query can use: both filter
//! and sort on the expression).
use sea_orm_migration::prelude::*;

use crate::rebuild_index::rebuild_column_indexes;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_column_indexes(
            manager,
            "last_contact_at",
            "((COALESCE(\"last_contact_at\", \"created_at\"))) \
             WHERE \"owner\" IS NOT NULL AND \"deleted_at\" IS NULL",
        )
        .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The old index served no query; nothing to put back.
        Ok(())
    }
}
