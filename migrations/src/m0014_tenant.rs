//! PostgreSQL: every insert into the outbox first takes the tenant's outbox lock (a
//! statement trigger), held to the commit. Outbox ids must become visible in order, or
//! the indexer's cursor could pass an id whose transaction commits later and skip it
//! for good; with the lock taken before any id, commits follow id order. The trigger
//! does it for every writer and saves each write a round trip. (SQLite serializes
//! writers already: nothing to do there.)
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE FUNCTION outbox_in_order() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               PERFORM pg_advisory_xact_lock(7461003, hashtext(TG_TABLE_SCHEMA)); \
               RETURN NULL; \
             END $$",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER outbox_in_order BEFORE INSERT ON outbox \
             FOR EACH STATEMENT EXECUTE FUNCTION outbox_in_order()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER outbox_in_order ON outbox")
            .await?;
        db.execute_unprepared("DROP FUNCTION outbox_in_order()")
            .await?;
        Ok(())
    }
}
