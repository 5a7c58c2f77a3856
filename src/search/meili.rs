//! The Meilisearch backend, chosen by `MEILISEARCH_URL` (and `MEILISEARCH_API_KEY`):
//! one Meilisearch index per tenant and search index (`{tenant}-{index}`).
//!
//! Meilisearch's own tokenizer knows neither pinyin nor our initials, so documents
//! carry the terms of `search::analyze` as a filterable array, and a query becomes a
//! filter expression over those terms and the owner — the same plan the embedded
//! backend runs, and the row scope applied inside the engine. Latin typos are matched
//! through each word's typo variants (symmetric deletes), indexed beside it. A filtered
//! placeholder search returns candidates unranked, so the best [`CANDIDATES`] are
//! ranked here: literal matches in the title first, then in a field.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use meilisearch_sdk::client::Client;
use meilisearch_sdk::errors::ErrorCode;
use meilisearch_sdk::search::Selectors;
use meilisearch_sdk::settings::Settings;
use meilisearch_sdk::task_info::TaskInfo;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::search::analyze::{self, Match};
use crate::search::{Document, Hit, SearchIndex, SearchQuery};

/// How many filtered candidates a search ranks (Meilisearch's default cap on hits).
const CANDIDATES: usize = 1000;
/// How long to wait for Meilisearch to apply a write before the indexer gives up and
/// retries the batch later.
const TASK_TIMEOUT: Duration = Duration::from_secs(600);
/// Owner value for records without owner (the public pool).
const NO_OWNER: i64 = 0;

#[derive(Debug, Serialize, Deserialize)]
struct MeiliDocument {
    id: i64,
    owner: i64,
    title: String,
    fields: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    terms: Vec<String>,
}

pub struct MeiliIndex {
    client: Client,
    /// Indexes whose settings this process has applied.
    prepared: Mutex<HashSet<String>>,
}

fn search_error(error: impl std::fmt::Display) -> Error {
    Error::Internal(format!("Meilisearch: {error}"))
}

impl MeiliIndex {
    pub fn new(url: &str, api_key: Option<&str>) -> Result<Self> {
        Ok(MeiliIndex {
            client: Client::new(url, api_key).map_err(search_error)?,
            prepared: Mutex::new(HashSet::new()),
        })
    }

    fn uid(tenant: &str, index: &str) -> String {
        format!("{tenant}-{index}")
    }

    /// Waits until Meilisearch has applied a write, so the indexer's cursor only moves
    /// past what is really searchable. A failure with the `harmless` code counts as
    /// done.
    async fn applied(&self, task: TaskInfo, harmless: Option<ErrorCode>) -> Result<()> {
        let task = task
            .wait_for_completion(
                &self.client,
                Some(Duration::from_millis(20)),
                Some(TASK_TIMEOUT),
            )
            .await
            .map_err(search_error)?;
        if task.is_failure() {
            let error = task.unwrap_failure();
            if Some(error.error_code.clone()) != harmless {
                return Err(search_error(error));
            }
        }
        Ok(())
    }

    /// The index, with its settings applied once per process (creating it if needed).
    async fn prepared(&self, tenant: &str, index: &str) -> Result<meilisearch_sdk::indexes::Index> {
        let uid = Self::uid(tenant, index);
        let handle = self.client.index(&uid);
        let mut prepared = self.prepared.lock().await;
        if !prepared.contains(&uid) {
            let settings = Settings::new()
                .with_filterable_attributes(["terms", "owner"])
                .with_searchable_attributes(["title"])
                .with_displayed_attributes(["id", "owner", "title", "fields"]);
            let task = handle.set_settings(&settings).await.map_err(search_error)?;
            self.applied(task, None).await?;
            prepared.insert(uid);
        }
        Ok(handle)
    }
}

/// A document as Meilisearch holds it: every term of every field, with typo variants
/// of the latin words.
fn to_meili(document: Document) -> MeiliDocument {
    let mut terms = Vec::new();
    for (field, text) in &document.fields {
        for term in analyze::terms(text) {
            if let Some(word) = term.strip_prefix("w:") {
                let typos = analyze::typos_allowed(word);
                if typos > 0 {
                    terms.extend(
                        analyze::typo_variants(word, typos)
                            .into_iter()
                            .map(|v| format!("{field}:{v}")),
                    );
                }
            }
            terms.push(format!("{field}:{term}"));
        }
    }
    MeiliDocument {
        id: document.id,
        owner: document.owner.unwrap_or(NO_OWNER),
        title: document.title,
        fields: document.fields,
        terms,
    }
}

/// A string literal of Meilisearch's filter syntax.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn any_of<'a>(field: &str, terms: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<String> = terms.map(|t| quoted(&format!("{field}:{t}"))).collect();
    format!("terms IN [{}]", list.join(", "))
}

fn condition(field: &str, m: &Match) -> String {
    match m {
        Match::Term(term) => format!("terms = {}", quoted(&format!("{field}:{term}"))),
        Match::AnyOf(terms) => any_of(field, terms.iter()),
        Match::Fuzzy(word, typos) => any_of(field, analyze::typo_variants(word, *typos).iter()),
    }
}

/// The query's plan and the caller's owners as one filter expression; `None` when
/// nothing can match.
fn filter(query: &SearchQuery) -> Option<String> {
    let plan = analyze::plan(&query.text);
    if plan.is_empty() || query.fields.is_empty() {
        return None;
    }
    let mut all: Vec<String> = plan
        .iter()
        .map(|piece| {
            let any: Vec<String> = query
                .fields
                .iter()
                .flat_map(|field| {
                    piece.iter().map(move |alternative| {
                        let each: Vec<String> =
                            alternative.iter().map(|m| condition(field, m)).collect();
                        format!("({})", each.join(" AND "))
                    })
                })
                .collect();
            format!("({})", any.join(" OR "))
        })
        .collect();
    if let Some(owners) = &query.owners {
        if owners.is_empty() {
            return None;
        }
        let owners: Vec<String> = owners.iter().map(i64::to_string).collect();
        all.push(format!("owner IN [{}]", owners.join(", ")));
    }
    Some(all.join(" AND "))
}

/// A candidate as a hit, scored by where the query's text appears literally or by
/// pinyin: in the title (best), in a field the caller may search, or only by terms.
fn rank(document: MeiliDocument, query: &SearchQuery) -> Hit {
    let title_match = analyze::highlight(&document.title, &query.text);
    let field_match = query
        .fields
        .iter()
        .filter_map(|f| document.fields.get(f))
        .find_map(|t| analyze::highlight(t, &query.text));
    let score = 1.0
        + if title_match.is_some() { 2.0 } else { 0.0 }
        + if field_match.is_some() { 1.0 } else { 0.0 };
    let snippet = field_match
        .or(title_match)
        .unwrap_or_else(|| analyze::escape(&document.title));
    Hit {
        id: document.id,
        owner: Some(document.owner).filter(|o| *o != NO_OWNER),
        score,
        title: document.title,
        snippet,
        fields: document
            .fields
            .into_iter()
            .filter(|(field, _)| query.fields.contains(field))
            .collect(),
    }
}

#[async_trait]
impl SearchIndex for MeiliIndex {
    fn backend(&self) -> &'static str {
        "meilisearch"
    }

    async fn ready(&self) -> Result<()> {
        self.client.health().await.map_err(search_error)?;
        Ok(())
    }

    async fn upsert(&self, tenant: &str, index: &str, documents: Vec<Document>) -> Result<()> {
        if documents.is_empty() {
            return Ok(());
        }
        let handle = self.prepared(tenant, index).await?;
        let documents: Vec<MeiliDocument> = documents.into_iter().map(to_meili).collect();
        let task = handle
            .add_or_replace(&documents, Some("id"))
            .await
            .map_err(search_error)?;
        self.applied(task, None).await
    }

    async fn delete(&self, tenant: &str, index: &str, ids: Vec<i64>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let handle = self.prepared(tenant, index).await?;
        let task = handle.delete_documents(&ids).await.map_err(search_error)?;
        self.applied(task, None).await
    }

    async fn clear(&self, tenant: &str, index: &str) -> Result<()> {
        let handle = self.prepared(tenant, index).await?;
        let task = handle.delete_all_documents().await.map_err(search_error)?;
        self.applied(task, None).await
    }

    async fn drop_index(&self, tenant: &str, index: &str) -> Result<()> {
        let uid = Self::uid(tenant, index);
        self.prepared.lock().await.remove(&uid);
        let task = self
            .client
            .index(&uid)
            .delete()
            .await
            .map_err(search_error)?;
        // An index that never existed is as dropped as can be.
        self.applied(task, Some(ErrorCode::IndexNotFound)).await
    }

    async fn search(&self, tenant: &str, index: &str, query: &SearchQuery) -> Result<Vec<Hit>> {
        let Some(filter) = filter(query) else {
            return Ok(Vec::new());
        };
        // Not `prepared`: searching never creates an index, and one that exists got
        // its settings when it was created.
        let handle = self.client.index(Self::uid(tenant, index));
        let results = handle
            .search()
            .with_filter(&filter)
            .with_limit(CANDIDATES)
            .with_attributes_to_retrieve(Selectors::Some(&["id", "owner", "title", "fields"]))
            .execute::<MeiliDocument>()
            .await;
        let results = match results {
            Ok(results) => results,
            Err(meilisearch_sdk::errors::Error::Meilisearch(error))
                if error.error_code == ErrorCode::IndexNotFound =>
            {
                return Ok(Vec::new());
            }
            Err(error) => return Err(search_error(error)),
        };
        let mut hits: Vec<Hit> = results
            .hits
            .into_iter()
            .map(|hit| rank(hit.result, query))
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(query.limit.max(1));
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str, owners: Option<Vec<i64>>) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            fields: vec!["name".into()],
            owners: owners.map(|o| o.into_iter().collect()),
            limit: 10,
        }
    }

    #[test]
    fn queries_become_filters_over_terms_and_owners() {
        assert_eq!(
            filter(&query("震华", Some(vec![3, 7]))).unwrap(),
            r#"((terms = "name:c:震华")) AND owner IN [3, 7]"#
        );
        let initials = filter(&query("szzh", None)).unwrap();
        assert!(
            initials.contains(
                r#"(terms = "name:i:sz" AND terms = "name:i:zz" AND terms = "name:i:zh")"#
            ),
            "{initials}"
        );
        assert!(filter(&query("  ", None)).is_none());
        assert!(
            filter(&query("震华", Some(vec![]))).is_none(),
            "no owner may be read"
        );
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn documents_carry_terms_and_typo_variants_per_field() {
        let document = to_meili(Document {
            id: 1,
            owner: None,
            title: "ACME".into(),
            fields: BTreeMap::from([("name".to_string(), "ACME 震华".to_string())]),
        });
        assert_eq!(document.owner, NO_OWNER);
        for term in [
            "name:w:acme",
            "name:x:acme",
            "name:x:acm",
            "name:c:震华",
            "name:p:zhen",
        ] {
            assert!(document.terms.contains(&term.to_string()), "{term}");
        }
    }
}
