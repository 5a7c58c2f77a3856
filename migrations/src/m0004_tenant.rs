//! Record shares (主送/抄送/知会): a record sent to people with a note.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RecordShares {
    Table,
    Id,
    Entity,
    RecordId,
    SharedBy,
    Recipients,
    Note,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RecordShares::Table)
                    .col(big_pk_auto(RecordShares::Id))
                    .col(string(RecordShares::Entity))
                    .col(big_integer(RecordShares::RecordId))
                    .col(big_integer(RecordShares::SharedBy))
                    .col(text(RecordShares::Recipients))
                    .col(text(RecordShares::Note))
                    .col(timestamp_with_time_zone(RecordShares::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_record_shares_record")
                    .table(RecordShares::Table)
                    .col(RecordShares::Entity)
                    .col(RecordShares::RecordId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RecordShares::Table).to_owned())
            .await
    }
}
