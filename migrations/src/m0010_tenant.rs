//! Import jobs: one row per spreadsheet import, advanced in the same transaction as
//! each batch of records it writes, so an interrupted import resumes exactly where
//! its last committed batch ended.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    Id,
    Entity,
    FileName,
    FileHash,
    Options,
    Status,
    Runner,
    RowsTotal,
    RowsDone,
    Created,
    Updated,
    Unchanged,
    Skipped,
    Errors,
    Duplicates,
    Message,
    StartedBy,
    StartedAt,
    UpdatedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ImportJobs::Table)
                    .col(big_pk_auto(ImportJobs::Id))
                    .col(string(ImportJobs::Entity))
                    .col(string(ImportJobs::FileName))
                    .col(string(ImportJobs::FileHash))
                    .col(text(ImportJobs::Options))
                    .col(string(ImportJobs::Status))
                    .col(string(ImportJobs::Runner))
                    .col(big_integer(ImportJobs::RowsTotal))
                    .col(big_integer(ImportJobs::RowsDone))
                    .col(big_integer(ImportJobs::Created))
                    .col(big_integer(ImportJobs::Updated))
                    .col(big_integer(ImportJobs::Unchanged))
                    .col(big_integer(ImportJobs::Skipped))
                    .col(text(ImportJobs::Errors))
                    .col(text(ImportJobs::Duplicates))
                    .col(text_null(ImportJobs::Message))
                    .col(big_integer(ImportJobs::StartedBy))
                    .col(timestamp_with_time_zone(ImportJobs::StartedAt))
                    .col(timestamp_with_time_zone(ImportJobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(ImportJobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("import_jobs_resume")
                    .table(ImportJobs::Table)
                    .col(ImportJobs::Entity)
                    .col(ImportJobs::FileHash)
                    .col(ImportJobs::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImportJobs::Table).to_owned())
            .await
    }
}
