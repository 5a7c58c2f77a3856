//! Customer search: the [`SearchIndex`] trait with its embedded backend (tantivy under
//! `data/search/`) and its Meilisearch backend, the Chinese/pinyin analysis both share, the indexer that
//! drains the outbox, and the permission-filtered search the API calls.

pub mod analyze;
pub mod duplicates;
pub mod embedded;
pub mod indexer;
pub mod meili;
pub mod service;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::error::Result;

/// One record as the search index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: i64,
    /// `None` for records in the public pool.
    pub owner: Option<i64>,
    pub title: String,
    /// The entity's searchable fields, as text.
    pub fields: BTreeMap<String, String>,
}

/// What to look for, and within what.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub text: String,
    /// Fields the caller may search (searchable and not masked from them).
    pub fields: Vec<String>,
    /// Owners whose records the caller may read; `None` means all.
    pub owners: Option<BTreeSet<i64>>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: i64,
    /// `None` for records in the public pool.
    pub owner: Option<i64>,
    pub score: f32,
    pub title: String,
    /// The best matching field's text with matches in `<em>`, HTML-escaped.
    pub snippet: String,
    /// The texts of the fields searched (the query's fields only), for comparisons
    /// such as the duplicate check.
    pub fields: BTreeMap<String, String>,
}

/// A search backend: one index per tenant and entity.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// The backend's name, part of each index's signature: switching backends
    /// rebuilds every index in the new one.
    fn backend(&self) -> &'static str;
    /// Whether the backend answers (`/readyz`); an embedded index always does.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
    /// Adds or replaces documents (by id).
    async fn upsert(&self, tenant: &str, entity: &str, documents: Vec<Document>) -> Result<()>;
    /// Adds documents to an index a rebuild is filling: none of them is in it yet, and
    /// they need be searchable only after [`SearchIndex::finish_load`]. A backend may
    /// skip the per-call commit and the replace-by-id an upsert does.
    async fn load(&self, tenant: &str, index: &str, documents: Vec<Document>) -> Result<()> {
        self.upsert(tenant, index, documents).await
    }
    /// Makes everything [`SearchIndex::load`]ed into an index durable and searchable.
    async fn finish_load(&self, _tenant: &str, _index: &str) -> Result<()> {
        Ok(())
    }
    async fn delete(&self, tenant: &str, entity: &str, ids: Vec<i64>) -> Result<()>;
    /// Removes every document of an entity (before a rebuild).
    async fn clear(&self, tenant: &str, entity: &str) -> Result<()>;
    /// Deletes an index altogether (a generation replaced by a rebuild); dropping an
    /// index that does not exist succeeds.
    async fn drop_index(&self, tenant: &str, index: &str) -> Result<()>;
    /// The best hits, filtered by owner inside the engine so a page is always full.
    async fn search(&self, tenant: &str, entity: &str, query: &SearchQuery) -> Result<Vec<Hit>>;
}
