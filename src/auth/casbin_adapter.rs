//! A Casbin adapter over a tenant's `casbin_rule` table, written with sea-query so it
//! works on both databases (the published sea-orm adapter is pinned to sea-orm 1).
//! Rows use the layout every Casbin adapter shares: `ptype, v0 … v5`.

use async_trait::async_trait;
use casbin::error::AdapterError;
use casbin::{Adapter, Filter, Model};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Cond, Expr, ExprTrait, Order, Query};

use crate::store::db::TenantDb;

const TABLE: &str = "casbin_rule";
const VALUES: [&str; 6] = ["v0", "v1", "v2", "v3", "v4", "v5"];

pub struct RuleAdapter {
    db: TenantDb,
}

impl RuleAdapter {
    pub fn new(db: TenantDb) -> Self {
        RuleAdapter { db }
    }
}

fn adapter_error(error: impl std::error::Error + Send + Sync + 'static) -> casbin::Error {
    casbin::Error::AdapterError(AdapterError(Box::new(error)))
}

/// The rules of a tenant, in insertion order, as `(ptype, values)`: all of them, or
/// those of one ptype whose first value is the given subject (one user's roles).
pub async fn load_rules(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    only: Option<(&str, &str)>,
) -> Result<Vec<(String, Vec<String>)>, sea_orm::DbErr> {
    let mut select = Query::select();
    select
        .column(Alias::new("ptype"))
        .columns(VALUES.map(Alias::new))
        .from(db.table(TABLE))
        .order_by(Alias::new("id"), Order::Asc);
    if let Some((ptype, subject)) = only {
        select
            .and_where(Expr::col(Alias::new("ptype")).eq(ptype))
            .and_where(Expr::col(Alias::new("v0")).eq(subject));
    }
    let rows = conn.query_all(&select).await?;
    rows.iter()
        .map(|row| {
            let ptype: String = row.try_get("", "ptype")?;
            let mut values = VALUES
                .iter()
                .map(|v| row.try_get::<String>("", v))
                .collect::<Result<Vec<_>, _>>()?;
            while values.last().is_some_and(String::is_empty) {
                values.pop();
            }
            Ok((ptype, values))
        })
        .collect()
}

/// Inserts rules of one ptype.
pub async fn insert_rules(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    ptype: &str,
    rules: &[Vec<String>],
) -> Result<(), sea_orm::DbErr> {
    // Batches keep each statement well under the databases' parameter limits.
    for chunk in rules.chunks(100) {
        let mut insert = Query::insert();
        insert
            .into_table(db.table(TABLE))
            .columns(std::iter::once("ptype").chain(VALUES).map(Alias::new));
        for rule in chunk {
            let mut values: Vec<Expr> = vec![Expr::val(ptype)];
            values.extend(
                (0..VALUES.len())
                    .map(|i| Expr::val(rule.get(i).map(String::as_str).unwrap_or_default())),
            );
            insert.values_panic(values);
        }
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// Deletes the rules of one ptype whose values start at `field_index` with
/// `field_values` (an empty value matches anything, as in Casbin).
/// Moves the lines of type `ptype` whose domain (in the value column `domain_index`)
/// is `from` to domain `to`.
pub async fn move_domain(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    ptype: &str,
    domain_index: usize,
    from: &str,
    to: &str,
) -> Result<(), sea_orm::DbErr> {
    let column = Alias::new(VALUES[domain_index]);
    let update = Query::update()
        .table(db.table(TABLE))
        .value(column.clone(), to)
        .and_where(Expr::col(Alias::new("ptype")).eq(ptype))
        .and_where(Expr::col(column).eq(from))
        .to_owned();
    conn.execute(&update).await?;
    Ok(())
}

pub async fn delete_rules(
    conn: &impl ConnectionTrait,
    db: &TenantDb,
    ptype: &str,
    field_index: usize,
    field_values: &[String],
) -> Result<u64, sea_orm::DbErr> {
    let mut condition = Cond::all().add(Expr::col(Alias::new("ptype")).eq(ptype));
    for (offset, value) in field_values.iter().enumerate() {
        let Some(column) = VALUES.get(field_index + offset) else {
            break;
        };
        if !value.is_empty() {
            condition = condition.add(Expr::col(Alias::new(*column)).eq(value.as_str()));
        }
    }
    let delete = Query::delete()
        .from_table(db.table(TABLE))
        .cond_where(condition)
        .to_owned();
    Ok(conn.execute(&delete).await?.rows_affected())
}

fn section(ptype: &str) -> String {
    ptype.chars().next().map(String::from).unwrap_or_default()
}

#[async_trait]
impl Adapter for RuleAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        for (ptype, values) in load_rules(&self.db.conn(), &self.db, None)
            .await
            .map_err(adapter_error)?
        {
            m.add_policy(&section(&ptype), &ptype, values);
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        f: Filter<'a>,
    ) -> casbin::Result<()> {
        for (ptype, values) in load_rules(&self.db.conn(), &self.db, None)
            .await
            .map_err(adapter_error)?
        {
            let filter = if ptype.starts_with('p') { &f.p } else { &f.g };
            let keep = filter.iter().enumerate().all(|(i, want)| {
                want.is_empty() || values.get(i).map(String::as_str) == Some(*want)
            });
            if keep {
                m.add_policy(&section(&ptype), &ptype, values);
            }
        }
        Ok(())
    }

    async fn save_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        let txn = self.db.begin_write().await.map_err(adapter_error)?;
        delete_all(&txn, &self.db).await.map_err(adapter_error)?;
        for (sec, assertions) in m.get_model() {
            if sec != "p" && sec != "g" {
                continue;
            }
            for ptype in assertions.keys() {
                let rules = m.get_policy(sec, ptype);
                insert_rules(&txn, &self.db, ptype, &rules)
                    .await
                    .map_err(adapter_error)?;
            }
        }
        txn.commit().await.map_err(adapter_error)
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        delete_all(&self.db.conn(), &self.db)
            .await
            .map_err(adapter_error)
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.add_policies(_sec, ptype, vec![rule]).await
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        insert_rules(&self.db.conn(), &self.db, ptype, &rules)
            .await
            .map_err(adapter_error)?;
        Ok(true)
    }

    async fn remove_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.remove_policies(_sec, ptype, vec![rule]).await
    }

    async fn remove_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let mut removed = 0;
        for rule in rules {
            // A whole rule: every value position must match, empty ones included.
            let mut padded = rule.clone();
            padded.resize(VALUES.len(), String::new());
            let mut condition = Cond::all().add(Expr::col(Alias::new("ptype")).eq(ptype));
            for (column, value) in VALUES.iter().zip(&padded) {
                condition = condition.add(Expr::col(Alias::new(*column)).eq(value.as_str()));
            }
            let delete = Query::delete()
                .from_table(self.db.table(TABLE))
                .cond_where(condition)
                .to_owned();
            removed += self
                .db
                .conn()
                .execute(&delete)
                .await
                .map_err(adapter_error)?
                .rows_affected();
        }
        Ok(removed > 0)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        let removed = delete_rules(&self.db.conn(), &self.db, ptype, field_index, &field_values)
            .await
            .map_err(adapter_error)?;
        Ok(removed > 0)
    }
}

async fn delete_all(conn: &impl ConnectionTrait, db: &TenantDb) -> Result<(), sea_orm::DbErr> {
    conn.execute(&Query::delete().from_table(db.table(TABLE)).to_owned())
        .await
        .map(|_| ())
}
