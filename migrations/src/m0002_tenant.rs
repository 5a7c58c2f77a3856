//! The organisation and its rights: departments (a tree with a manager each), users'
//! departments, and the Casbin policy lines (`casbin_rule`, the layout every Casbin
//! adapter uses): `p` lines generated from the metadata's roles on every publish, `g`
//! lines assigning users to roles.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
    Name,
    Parent,
    Manager,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Department,
}

#[derive(DeriveIden)]
enum CasbinRule {
    Table,
    Id,
    Ptype,
    V0,
    V1,
    V2,
    V3,
    V4,
    V5,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Departments::Table)
                    .col(big_pk_auto(Departments::Id))
                    .col(string(Departments::Name))
                    .col(big_integer_null(Departments::Parent))
                    .col(big_integer_null(Departments::Manager))
                    .col(timestamp_with_time_zone(Departments::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer_null(Users::Department))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CasbinRule::Table)
                    .col(big_pk_auto(CasbinRule::Id))
                    .col(string(CasbinRule::Ptype))
                    .col(string(CasbinRule::V0).default(""))
                    .col(string(CasbinRule::V1).default(""))
                    .col(string(CasbinRule::V2).default(""))
                    .col(string(CasbinRule::V3).default(""))
                    .col(string(CasbinRule::V4).default(""))
                    .col(string(CasbinRule::V5).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_casbin_rule_ptype_v0")
                    .table(CasbinRule::Table)
                    .col(CasbinRule::Ptype)
                    .col(CasbinRule::V0)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CasbinRule::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::Department)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Departments::Table).to_owned())
            .await
    }
}
