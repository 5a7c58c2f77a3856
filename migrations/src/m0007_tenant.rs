//! Reports people save from the report builder (their own, optionally shared with
//! roles), beside the package's reports: saving one is not a metadata publish.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SavedReports {
    Table,
    Key,
    Owner,
    Definition,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SavedReports::Table)
                    .col(string(SavedReports::Key).primary_key())
                    .col(big_integer(SavedReports::Owner))
                    .col(text(SavedReports::Definition))
                    .col(timestamp_with_time_zone(SavedReports::CreatedAt))
                    .col(timestamp_with_time_zone(SavedReports::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SavedReports::Table).to_owned())
            .await
    }
}
