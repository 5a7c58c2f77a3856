use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    DisplayName,
    PasswordHash,
    IsAdmin,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MetaVersions {
    Table,
    Version,
    Author,
    CreatedAt,
    Package,
    Plan,
    Archived,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    Entity,
    RecordId,
    Action,
    UserId,
    At,
    Changes,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Entity,
    RecordId,
    Op,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sequences {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string_uniq(Users::Username))
                    .col(string(Users::DisplayName))
                    .col(string(Users::PasswordHash))
                    .col(boolean(Users::IsAdmin).default(false))
                    .col(boolean(Users::Active).default(true))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MetaVersions::Table)
                    .col(big_integer(MetaVersions::Version).primary_key())
                    .col(big_integer_null(MetaVersions::Author))
                    .col(timestamp_with_time_zone(MetaVersions::CreatedAt))
                    .col(text(MetaVersions::Package))
                    .col(text(MetaVersions::Plan))
                    .col(text(MetaVersions::Archived))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(big_pk_auto(AuditLog::Id))
                    .col(string(AuditLog::Entity))
                    .col(big_integer(AuditLog::RecordId))
                    .col(string(AuditLog::Action))
                    .col(big_integer_null(AuditLog::UserId))
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(text(AuditLog::Changes))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_log_record")
                    .table(AuditLog::Table)
                    .col(AuditLog::Entity)
                    .col(AuditLog::RecordId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    .col(string(Outbox::Entity))
                    .col(big_integer(Outbox::RecordId))
                    .col(string(Outbox::Op))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sequences::Table)
                    .col(string(Sequences::Name).primary_key())
                    .col(big_integer(Sequences::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Sequences::Table.into_iden(),
            Outbox::Table.into_iden(),
            AuditLog::Table.into_iden(),
            MetaVersions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
