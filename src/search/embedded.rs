//! The embedded search backend: one tantivy index per tenant and entity under
//! `<data>/search/<tenant>/<index>/`. Documents hold pre-analysed terms
//! (`search::analyze`) in one whitespace-tokenized field, the owner as a filterable
//! number, and the texts for snippets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tantivy::collector::TopDocs;
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::search::analyze::{self, Match};
use crate::search::{Document, Hit, SearchIndex, SearchQuery};

struct Fields {
    id: Field,
    owner: Field,
    terms: Field,
    title: Field,
    texts: Field,
}

/// The index writer's memory budget, in bytes.
const WRITER_MEMORY: usize = 64_000_000;

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let id = builder.add_i64_field("id", INDEXED | STORED);
    let owner = builder.add_i64_field("owner", INDEXED | STORED);
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("whitespace")
        .set_index_option(IndexRecordOption::WithFreqs);
    let terms = builder.add_text_field(
        "terms",
        TextOptions::default().set_indexing_options(indexing),
    );
    let title = builder.add_text_field("title", STORED);
    let texts = builder.add_text_field("texts", STORED);
    let fields = Fields {
        id,
        owner,
        terms,
        title,
        texts,
    };
    (builder.build(), fields)
}

/// Owner value for records without owner (the public pool).
const NO_OWNER: i64 = 0;

struct EntityIndex {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
}

pub struct EmbeddedIndex {
    root: PathBuf,
    open: Mutex<HashMap<(String, String), Arc<EntityIndex>>>,
}

fn search_error(error: impl std::fmt::Display) -> Error {
    Error::Internal(format!("search index: {error}"))
}

impl EmbeddedIndex {
    pub fn new(root: PathBuf) -> Self {
        EmbeddedIndex {
            root,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The open index, opening (and with `create`, creating) it on first use; `None`
    /// when it does not exist and may not be created.
    fn index(&self, tenant: &str, entity: &str, create: bool) -> Result<Option<Arc<EntityIndex>>> {
        let key = (tenant.to_string(), entity.to_string());
        let mut open = self.open.lock().expect("search index registry");
        if let Some(index) = open.get(&key) {
            return Ok(Some(index.clone()));
        }
        let dir = self.root.join(tenant).join(entity);
        if !create && !dir.exists() {
            return Ok(None);
        }
        std::fs::create_dir_all(&dir).map_err(search_error)?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(&dir).map_err(search_error)?;
        let index = Index::open_or_create(directory, schema).map_err(search_error)?;
        // Shared by the writer's threads; a small budget flushes many small segments
        // during a rebuild (measured: 15 MB gave 18,000 documents/s, see
        // docs/performance.md). The arena grows only while documents are added.
        let writer = index.writer(WRITER_MEMORY).map_err(search_error)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(search_error)?;
        let entity_index = Arc::new(EntityIndex {
            fields,
            writer: Mutex::new(writer),
            reader,
        });
        open.insert(key, entity_index.clone());
        Ok(Some(entity_index))
    }

    /// Runs blocking index work off the async executor.
    async fn blocking<T: Send + 'static>(
        &self,
        tenant: &str,
        entity: &str,
        work: impl FnOnce(&EntityIndex) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let index = self
            .index(tenant, entity, true)?
            .expect("created on demand");
        tokio::task::spawn_blocking(move || work(&index))
            .await
            .map_err(search_error)?
    }
}

impl EntityIndex {
    fn commit(&self, change: impl FnOnce(&mut IndexWriter) -> Result<()>) -> Result<()> {
        let mut writer = self.writer.lock().expect("index writer");
        change(&mut writer)?;
        writer.commit().map_err(search_error)?;
        self.reader.reload().map_err(search_error)
    }

    fn document(&self, document: &Document) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_i64(f.id, document.id);
        doc.add_i64(f.owner, document.owner.unwrap_or(NO_OWNER));
        doc.add_text(f.title, &document.title);
        let mut terms = String::new();
        for (field, text) in &document.fields {
            for term in analyze::terms(text) {
                terms.push_str(field);
                terms.push(':');
                terms.push_str(&term);
                terms.push(' ');
            }
        }
        doc.add_text(f.terms, terms);
        doc.add_text(
            f.texts,
            serde_json::to_string(&document.fields).expect("texts serialize"),
        );
        doc
    }

    /// The query for one match on one field.
    fn matcher(&self, field: &str, m: &Match) -> Box<dyn Query> {
        let term = |t: &str| Term::from_field_text(self.fields.terms, &format!("{field}:{t}"));
        match m {
            Match::Term(t) => Box::new(TermQuery::new(term(t), IndexRecordOption::WithFreqs)),
            Match::AnyOf(terms) => Box::new(TermSetQuery::new(terms.iter().map(|t| term(t)))),
            Match::Fuzzy(word, distance) => Box::new(FuzzyTermQuery::new(
                term(&format!("w:{word}")),
                *distance,
                true,
            )),
        }
    }

    fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>> {
        let plan = analyze::plan(&query.text);
        if plan.is_empty() || query.fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for piece in &plan {
            // A piece matches if any alternative matches all its terms in one field.
            let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for field in &query.fields {
                for alternative in piece {
                    let all = alternative
                        .iter()
                        .map(|m| (Occur::Must, self.matcher(field, m)))
                        .collect();
                    any.push((Occur::Should, Box::new(BooleanQuery::new(all))));
                }
            }
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(owners) = &query.owners {
            let terms = owners
                .iter()
                .map(|o| Term::from_field_i64(self.fields.owner, *o));
            must.push((Occur::Must, Box::new(TermSetQuery::new(terms))));
        }
        let searcher = self.reader.searcher();
        let top = searcher
            .search(
                &BooleanQuery::new(must),
                &TopDocs::with_limit(query.limit.max(1)).order_by_score(),
            )
            .map_err(search_error)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(search_error)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let texts: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&text(self.fields.texts)).unwrap_or_default();
            let title = text(self.fields.title);
            let snippet = query
                .fields
                .iter()
                .filter_map(|f| texts.get(f))
                .find_map(|t| analyze::highlight(t, &query.text))
                .unwrap_or_else(|| {
                    analyze::highlight(&title, &query.text)
                        .unwrap_or_else(|| analyze::escape(&title))
                });
            let number = |field: Field| doc.get_first(field).and_then(|v| v.as_i64());
            hits.push(Hit {
                id: number(self.fields.id).unwrap_or_default(),
                owner: number(self.fields.owner).filter(|o| *o != NO_OWNER),
                score,
                title,
                snippet,
                fields: texts
                    .into_iter()
                    .filter(|(field, _)| query.fields.contains(field))
                    .collect(),
            });
        }
        Ok(hits)
    }
}

#[async_trait]
impl SearchIndex for EmbeddedIndex {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn upsert(&self, tenant: &str, entity: &str, documents: Vec<Document>) -> Result<()> {
        self.blocking(tenant, entity, move |index| {
            index.commit(|writer| {
                for document in &documents {
                    writer.delete_term(Term::from_field_i64(index.fields.id, document.id));
                    writer
                        .add_document(index.document(document))
                        .map_err(search_error)?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn load(&self, tenant: &str, entity: &str, documents: Vec<Document>) -> Result<()> {
        self.blocking(tenant, entity, move |index| {
            let writer = index.writer.lock().expect("index writer");
            // Merging while a rebuild adds documents merges each of them several times
            // over; `finish_load` lets the usual policy merge the finished segments once.
            writer.set_merge_policy(Box::new(NoMergePolicy));
            for document in &documents {
                writer
                    .add_document(index.document(document))
                    .map_err(search_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_load(&self, tenant: &str, entity: &str) -> Result<()> {
        self.blocking(tenant, entity, |index| {
            index.commit(|writer| {
                writer.set_merge_policy(Box::new(LogMergePolicy::default()));
                Ok(())
            })
        })
        .await
    }

    async fn delete(&self, tenant: &str, entity: &str, ids: Vec<i64>) -> Result<()> {
        self.blocking(tenant, entity, move |index| {
            index.commit(|writer| {
                for id in ids {
                    writer.delete_term(Term::from_field_i64(index.fields.id, id));
                }
                Ok(())
            })
        })
        .await
    }

    async fn clear(&self, tenant: &str, entity: &str) -> Result<()> {
        self.blocking(tenant, entity, |index| {
            index.commit(|writer| {
                writer
                    .delete_all_documents()
                    .map(|_| ())
                    .map_err(search_error)
            })
        })
        .await
    }

    async fn drop_index(&self, tenant: &str, index: &str) -> Result<()> {
        let key = (tenant.to_string(), index.to_string());
        // Searches still holding the index finish on their open files.
        self.open
            .lock()
            .expect("search index registry")
            .remove(&key);
        let dir = self.root.join(tenant).join(index);
        match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(search_error(error)),
            _ => Ok(()),
        }
    }

    async fn search(&self, tenant: &str, entity: &str, query: &SearchQuery) -> Result<Vec<Hit>> {
        // Searching never creates an index: one not built yet (or just dropped by a
        // rebuild's switch) has no hits.
        let Some(index) = self.index(tenant, entity, false)? else {
            return Ok(Vec::new());
        };
        let query = query.clone();
        tokio::task::spawn_blocking(move || index.search(&query))
            .await
            .map_err(search_error)?
    }
}
