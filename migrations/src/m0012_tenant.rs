//! Webhook deliveries: one row per event and webhook, kept as the delivery log (status,
//! attempts, the receiver's last answer) and retried from here, so a restart loses
//! none; and how far the webhook dispatcher has read the outbox.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    Webhook,
    Event,
    Entity,
    RecordId,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatus,
    LastResponse,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookCursor {
    Table,
    Name,
    Position,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(string(WebhookDeliveries::Webhook))
                    .col(string(WebhookDeliveries::Event))
                    .col(string(WebhookDeliveries::Entity))
                    .col(big_integer(WebhookDeliveries::RecordId))
                    .col(text(WebhookDeliveries::Payload))
                    .col(string(WebhookDeliveries::Status))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(integer_null(WebhookDeliveries::LastStatus))
                    .col(text_null(WebhookDeliveries::LastResponse))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookCursor::Table)
                    .col(string(WebhookCursor::Name).primary_key())
                    .col(big_integer(WebhookCursor::Position))
                    .to_owned(),
            )
            .await?;
        // Webhooks hear of events from now on, not of the history already written.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO webhook_cursor (name, position) SELECT 'outbox', COALESCE(MAX(id), 0) FROM outbox",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookCursor::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await
    }
}
