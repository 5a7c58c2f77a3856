//! The organisation: departments as a tree with a manager each, and the owner sets
//! that row scopes become (`department`, `subordinates`).

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::meta::Scope;
use crate::store::db::{TenantDb, query_first};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub parent: Option<i64>,
    pub manager: Option<i64>,
}

/// A department's writable attributes; on a patch, absent keys stay as they are and
/// `null` clears `parent` or `manager`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, with = "double_option")]
    pub parent: Option<Option<i64>>,
    #[serde(default, with = "double_option")]
    pub manager: Option<Option<i64>>,
}

/// Distinguishes an absent key (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

const COLUMNS: [&str; 4] = ["id", "name", "parent", "manager"];

pub async fn list(db: &TenantDb) -> Result<Vec<Department>> {
    list_on(&db.conn(), db).await
}

async fn list_on(conn: &impl ConnectionTrait, db: &TenantDb) -> Result<Vec<Department>> {
    let select = Query::select()
        .columns(COLUMNS.map(Alias::new))
        .from(db.table("departments"))
        .order_by(Alias::new("id"), Order::Asc)
        .to_owned();
    conn.query_all(&select)
        .await?
        .iter()
        .map(|row| {
            Ok(Department {
                id: row.try_get("", "id")?,
                name: row.try_get("", "name")?,
                parent: row.try_get("", "parent")?,
                manager: row.try_get("", "manager")?,
            })
        })
        .collect()
}

pub async fn get(db: &TenantDb, id: i64) -> Result<Department> {
    list(db)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| Error::not_found(format!("department {id}")))
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::field("name", "is required (at most 100 characters)"));
    }
    Ok(name.to_string())
}

async fn check_manager(conn: &impl ConnectionTrait, db: &TenantDb, manager: i64) -> Result<()> {
    let select = Query::select()
        .column(Alias::new("id"))
        .from(db.table("users"))
        .and_where(Expr::col(Alias::new("id")).eq(manager))
        .to_owned();
    match query_first(conn, &select).await? {
        Some(_) => Ok(()),
        None => Err(Error::field(
            "manager",
            format!("user {manager} does not exist"),
        )),
    }
}

/// Through `Tenant::create_department`, which drops the tenant's cached organisation.
pub(crate) async fn create(db: &TenantDb, input: &DepartmentInput) -> Result<Department> {
    let name = check_name(input.name.as_deref().unwrap_or_default())?;
    let parent = input.parent.flatten();
    let manager = input.manager.flatten();
    let txn = db.begin_write().await?;
    let departments = list_on(&txn, db).await?;
    if let Some(parent) = parent
        && !departments.iter().any(|d| d.id == parent)
    {
        return Err(Error::field(
            "parent",
            format!("department {parent} does not exist"),
        ));
    }
    if let Some(manager) = manager {
        check_manager(&txn, db, manager).await?;
    }
    let insert = Query::insert()
        .into_table(db.table("departments"))
        .columns(["name", "parent", "manager", "created_at"].map(Alias::new))
        .values_panic([
            name.clone().into(),
            parent.into(),
            manager.into(),
            Utc::now().into(),
        ])
        .returning_col(Alias::new("id"))
        .to_owned();
    let row = query_first(&txn, &insert)
        .await?
        .ok_or_else(|| Error::Internal("insert returned no id".into()))?;
    let id: i64 = row.try_get("", "id")?;
    txn.commit().await?;
    Ok(Department {
        id,
        name,
        parent,
        manager,
    })
}

/// Renames, re-parents (moving the whole subtree) or changes the manager; a parent
/// inside the department's own subtree is refused. Through `Tenant::update_department`.
pub(crate) async fn update(db: &TenantDb, id: i64, input: &DepartmentInput) -> Result<Department> {
    let txn = db.begin_write().await?;
    let departments = list_on(&txn, db).await?;
    let mut department = departments
        .iter()
        .find(|d| d.id == id)
        .cloned()
        .ok_or_else(|| Error::not_found(format!("department {id}")))?;
    if let Some(name) = &input.name {
        department.name = check_name(name)?;
    }
    if let Some(parent) = input.parent {
        if let Some(parent) = parent {
            if !departments.iter().any(|d| d.id == parent) {
                return Err(Error::field(
                    "parent",
                    format!("department {parent} does not exist"),
                ));
            }
            if subtree(&departments, [id]).contains(&parent) {
                return Err(Error::field(
                    "parent",
                    format!(
                        "department {parent} is inside department {id}'s own subtree; that would make a cycle"
                    ),
                ));
            }
        }
        department.parent = parent;
    }
    if let Some(manager) = input.manager {
        if let Some(manager) = manager {
            check_manager(&txn, db, manager).await?;
        }
        department.manager = manager;
    }
    let update = Query::update()
        .table(db.table("departments"))
        .values([
            (Alias::new("name"), department.name.clone().into()),
            (Alias::new("parent"), department.parent.into()),
            (Alias::new("manager"), department.manager.into()),
        ])
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .to_owned();
    txn.execute(&update).await?;
    txn.commit().await?;
    Ok(department)
}

/// The departments in the subtrees under `roots`, roots included.
fn subtree(departments: &[Department], roots: impl IntoIterator<Item = i64>) -> BTreeSet<i64> {
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for department in departments {
        if let Some(parent) = department.parent {
            children.entry(parent).or_default().push(department.id);
        }
    }
    let mut seen = BTreeSet::new();
    let mut stack: Vec<i64> = roots.into_iter().collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(children.get(&id).into_iter().flatten());
        }
    }
    seen
}

/// The organisation: departments and who is in which. A tenant keeps it until a user
/// or a department changes (`Tenant::org`); a request reads it once, so moving a user
/// or a department changes what the next request may see.
#[derive(Debug, Clone)]
pub struct Org {
    departments: Vec<Department>,
    /// Every user with their department.
    members: Vec<(i64, Option<i64>)>,
}

impl Org {
    pub async fn load(db: &TenantDb) -> Result<Org> {
        let conn = db.conn();
        let departments = list_on(&conn, db).await?;
        let select = Query::select()
            .columns(["id", "department"].map(Alias::new))
            .from(db.table("users"))
            .to_owned();
        let members = conn
            .query_all(&select)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "department")?)))
            .collect::<Result<_>>()?;
        Ok(Org {
            departments,
            members,
        })
    }

    /// How many users the tenant has.
    pub fn people(&self) -> usize {
        self.members.len()
    }

    fn department_of(&self, user_id: i64) -> Option<i64> {
        self.members
            .iter()
            .find(|(id, _)| *id == user_id)
            .and_then(|(_, department)| *department)
    }

    fn managed_by(&self, user_id: i64) -> impl Iterator<Item = i64> + '_ {
        self.departments
            .iter()
            .filter(move |d| d.manager == Some(user_id))
            .map(|d| d.id)
    }

    /// The owners whose records a scope reaches for this user; `None` means all.
    /// `own` is the user; `department` adds the members of the user's department
    /// and of departments the user manages; `subordinates` adds everyone in those
    /// departments' subtrees.
    pub fn owners(&self, user_id: i64, scope: Scope) -> Option<BTreeSet<i64>> {
        let roots: BTreeSet<i64> = self
            .department_of(user_id)
            .into_iter()
            .chain(self.managed_by(user_id))
            .collect();
        let departments = match scope {
            Scope::All => return None,
            Scope::Own => BTreeSet::new(),
            Scope::Department => roots,
            Scope::Subordinates => subtree(&self.departments, roots),
        };
        let mut owners: BTreeSet<i64> = self
            .members
            .iter()
            .filter(|(_, d)| d.is_some_and(|d| departments.contains(&d)))
            .map(|(id, _)| *id)
            .collect();
        owners.insert(user_id);
        Some(owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Org {
        // 1 sales (manager 10) ─┬─ 2 team east (manager 20) ── 4 east-1
        //                       └─ 3 team west
        // 5 finance
        let department = |id, parent, manager| Department {
            id,
            name: format!("d{id}"),
            parent,
            manager,
        };
        Org {
            departments: vec![
                department(1, None, Some(10)),
                department(2, Some(1), Some(20)),
                department(3, Some(1), None),
                department(4, Some(2), None),
                department(5, None, None),
            ],
            members: vec![
                (10, Some(1)),
                (20, Some(2)),
                (21, Some(2)),
                (30, Some(3)),
                (40, Some(4)),
                (50, Some(5)),
                (60, None),
            ],
        }
    }

    #[test]
    fn scopes_become_owner_sets() {
        let org = org();
        let set = |ids: &[i64]| Some(ids.iter().copied().collect::<BTreeSet<_>>());
        assert_eq!(org.owners(21, Scope::Own), set(&[21]));
        assert_eq!(org.owners(21, Scope::Department), set(&[20, 21]));
        assert_eq!(org.owners(21, Scope::Subordinates), set(&[20, 21, 40]));
        assert_eq!(
            org.owners(10, Scope::Subordinates),
            set(&[10, 20, 21, 30, 40])
        );
        assert_eq!(org.owners(60, Scope::Subordinates), set(&[60]));
        assert_eq!(org.owners(60, Scope::All), None);
    }

    #[test]
    fn a_manager_outside_the_department_sees_it() {
        let mut org = org();
        org.departments[4].manager = Some(60);
        let owners = org.owners(60, Scope::Department).unwrap();
        assert!(owners.contains(&50) && owners.contains(&60));
    }

    #[test]
    fn subtrees_survive_cycles_in_stored_data() {
        let mut departments = org().departments;
        departments[0].parent = Some(4);
        assert_eq!(subtree(&departments, [2]), BTreeSet::from([1, 2, 3, 4]));
    }
}
