//! Scheduled rules: the last time slot each rule ran for (claimed under the row's lock,
//! so nodes sharing a database run a slot once), and the log of runs.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScheduleSlots {
    Table,
    Schedule,
    LastSlot,
}

#[derive(DeriveIden)]
enum ScheduleRuns {
    Table,
    Id,
    Schedule,
    Slot,
    RanAt,
    Status,
    Notified,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScheduleSlots::Table)
                    .col(string(ScheduleSlots::Schedule).primary_key())
                    .col(timestamp_with_time_zone(ScheduleSlots::LastSlot))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScheduleRuns::Table)
                    .col(big_pk_auto(ScheduleRuns::Id))
                    .col(string(ScheduleRuns::Schedule))
                    .col(timestamp_with_time_zone(ScheduleRuns::Slot))
                    .col(timestamp_with_time_zone(ScheduleRuns::RanAt))
                    .col(string(ScheduleRuns::Status))
                    .col(big_integer(ScheduleRuns::Notified))
                    .col(text(ScheduleRuns::Detail))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ScheduleRuns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ScheduleSlots::Table).to_owned())
            .await
    }
}
