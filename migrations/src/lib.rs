//! System-table migrations for metacrm.
//!
//! Two migrators: [`SystemMigrator`] for the platform namespace (tenants, sessions) and
//! [`TenantMigrator`] for the fixed tables every tenant namespace holds next to its
//! metadata-generated entity tables (users, metadata versions, audit trail, outbox,
//! sequences). Entity tables are not migrations: they are planned from metadata.

use sea_orm_migration::prelude::*;

mod m0001_system;
mod m0001_tenant;
mod m0002_system;
mod m0002_tenant;
mod m0003_system;
mod m0003_tenant;
mod m0004_tenant;
mod m0005_tenant;
mod m0006_tenant;
mod m0007_tenant;
mod m0008_tenant;
mod m0009_tenant;
mod m0010_tenant;
mod m0011_tenant;
mod m0012_tenant;
mod m0013_tenant;
mod m0014_tenant;
mod m0015_tenant;
mod m0016_tenant;
mod rebuild_index;

pub use sea_orm_migration::MigratorTrait;

/// The name of an entity table's index (`ix_<entity>_<key>`, `ux_…` for unique ones),
/// shared by the planner and the migrations that rebuild such indexes. PostgreSQL
/// truncates identifiers at 63 bytes, so long names end in a hash to stay distinct.
pub fn index_name(entity: &str, field: &str, unique: bool) -> String {
    let prefix = if unique { "ux" } else { "ix" };
    let name = format!("{prefix}_{entity}_{field}");
    if name.len() <= 60 {
        return name;
    }
    let hash = fnv1a(name.as_bytes());
    format!("{}_{hash:08x}", &name[..50])
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c9dc5u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x01000193)
    })
}

pub struct SystemMigrator;

#[async_trait::async_trait]
impl MigratorTrait for SystemMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_system::Migration),
            Box::new(m0002_system::Migration),
            Box::new(m0003_system::Migration),
        ]
    }
}

pub struct TenantMigrator;

#[async_trait::async_trait]
impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_tenant::Migration),
            Box::new(m0002_tenant::Migration),
            Box::new(m0003_tenant::Migration),
            Box::new(m0004_tenant::Migration),
            Box::new(m0005_tenant::Migration),
            Box::new(m0006_tenant::Migration),
            Box::new(m0007_tenant::Migration),
            Box::new(m0008_tenant::Migration),
            Box::new(m0009_tenant::Migration),
            Box::new(m0010_tenant::Migration),
            Box::new(m0011_tenant::Migration),
            Box::new(m0012_tenant::Migration),
            Box::new(m0013_tenant::Migration),
            Box::new(m0014_tenant::Migration),
            Box::new(m0015_tenant::Migration),
            Box::new(m0016_tenant::Migration),
        ]
    }
}
