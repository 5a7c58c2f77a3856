//! Attachment files: one row per stored content (its SHA-256), with the type sniffed
//! from the bytes and who uploaded it first.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Files {
    Table,
    Hash,
    Size,
    ContentType,
    UploadedBy,
    UploadedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .col(string(Files::Hash).primary_key())
                    .col(big_integer(Files::Size))
                    .col(string(Files::ContentType))
                    .col(big_integer(Files::UploadedBy))
                    .col(timestamp_with_time_zone(Files::UploadedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Files::Table).to_owned())
            .await
    }
}
