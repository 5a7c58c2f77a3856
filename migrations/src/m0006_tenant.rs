//! Which generation of each entity's search index answers searches, and the signature
//! (analysis, backend, searchable fields) it was built for: a rebuild fills the next
//! generation while the current one keeps answering, then switches.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SearchIndexes {
    Table,
    Entity,
    Generation,
    Signature,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SearchIndexes::Table)
                    .col(string(SearchIndexes::Entity).primary_key())
                    .col(big_integer(SearchIndexes::Generation))
                    .col(string(SearchIndexes::Signature))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SearchIndexes::Table).to_owned())
            .await
    }
}
