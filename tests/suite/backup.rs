//! `metacrm backup` and `metacrm restore`: a backup taken while the server writes is
//! one consistent snapshot, and restoring it as a new tenant reproduces every record,
//! its history, the users, the metadata (archived columns included) and the files,
//! byte for byte through the API; bad restores are refused and say why.

use crate::common::{self, PASSWORD, TestServer};

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true, "searchable": true},
          {"key": "amount", "type": "decimal", "scale": 2},
          {"key": "ratio", "type": "decimal", "scale": 4},
          {"key": "since", "type": "date"},
          {"key": "met_at", "type": "datetime"},
          {"key": "vip", "type": "boolean"},
          {"key": "level", "type": "select", "options": [{"value": "A"}, {"value": "B"}]},
          {"key": "employees", "type": "integer"},
          {"key": "docs", "type": "attachment"}
      ],
      "pipeline": {"stages": [{"key": "contact"}, {"key": "quote"}, {"key": "signed", "won": true}],
                   "transitions": "forward"}},
      {"key": "memo", "fields": [{"key": "body", "type": "long_text"}]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"}]}
    ]})
}

/// The package without `employees` and `memo`: both archived with their data.
fn reduced() -> Value {
    let mut package = package();
    package["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["key"] != "employees");
    package["entities"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["key"] != "memo");
    package
}

/// The `metacrm` command over the test server's data and database.
fn metacrm(server: &TestServer) -> Command {
    common::metacrm_command(server.dir.path())
}

/// A response's exact bytes, as text.
async fn text(server: &TestServer, token: &str, path: &str) -> String {
    let fetched = server.fetch(token, path).await;
    assert_eq!(fetched.status, 200, "{path}");
    String::from_utf8(fetched.bytes).unwrap()
}

/// A record's history, with the time spent so far in the stage it is in left out (it
/// grows between two requests).
async fn history(server: &TestServer, token: &str, path: &str) -> Value {
    let mut history: Value = serde_json::from_str(&text(server, token, path).await).unwrap();
    for stage in history["stages"].as_array_mut().unwrap() {
        if stage["left_at"].is_null() {
            stage["seconds"] = Value::Null;
        }
    }
    history
}

async fn login(server: &TestServer, tenant: &str, username: &str) -> String {
    let reply = server
        .send(
            Method::POST,
            "/api/auth/login",
            Some(json!({"tenant": tenant, "username": username, "password": PASSWORD})),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["token"].as_str().unwrap().to_string()
}

async fn customer_ids(server: &TestServer, token: &str) -> Vec<i64> {
    let reply = server
        .call(
            token,
            Method::POST,
            "/api/data/customer/query",
            Some(json!({"limit": 1000})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_backup_reproduces_the_tenant_byte_for_byte() {
    let server = TestServer::start(package()).await;
    let (_, sales) = server.user("rep", &["sales"], None).await;
    let upload = server
        .upload_as(&sales, "合同.txt", "合同内容 v1".as_bytes())
        .await;
    assert_eq!(upload.status, 200, "{:?}", upload.body);
    let first = server
        .create(
            "customer",
            json!({"name": "深圳市震华信息技术有限公司", "amount": "1234.56", "ratio": "0.1",
                   "since": "2024-03-05", "met_at": "2024-03-05T09:30:00+08:00", "vip": true,
                   "level": "A", "employees": 42, "docs": [upload.body.clone()]}),
        )
        .await;
    let id = first["id"].as_i64().unwrap();
    let moved = server
        .post(
            &format!("/api/data/customer/{id}/stage"),
            json!({"to": "quote"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let changed = server
        .patch(
            &format!("/api/data/customer/{id}"),
            json!({"amount": "99.90"}),
            None,
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let by_rep = server
        .call(
            &sales,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "业务员的客户", "ratio": "0.0001"})),
        )
        .await;
    assert_eq!(by_rep.status, 201, "{:?}", by_rep.body);
    let gone = server.create("customer", json!({"name": "已删除"})).await;
    let deleted = server
        .send(
            Method::DELETE,
            &format!("/api/data/customer/{}", gone["id"]),
            None,
            Some(&server.token),
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    server.create("memo", json!({"body": "备忘"})).await;
    // Archived while holding data: the restore must keep the archived columns.
    let archived = server.put("/api/meta", reduced()).await;
    assert_eq!(archived.status, 200, "{:?}", archived.body);
    let before = customer_ids(&server, &server.token).await;

    // The backup runs while a writer keeps creating customers.
    let file = server.dir.path().join("backup.zip");
    let writing = {
        let (base, token, client) = (
            server.base.clone(),
            server.token.clone(),
            server.client.clone(),
        );
        tokio::spawn(async move {
            for n in 0..40 {
                let reply = client
                    .post(format!("{base}/api/data/customer"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("备份期间{n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status(), 201);
            }
        })
    };
    let mut backup = metacrm(&server);
    backup
        .args(["backup", "--tenant", &server.tenant.key])
        .arg(&file);
    let (ok, output) = tokio::task::spawn_blocking(move || common::run_command(&mut backup))
        .await
        .unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("files"), "{output}");
    writing.await.unwrap();

    let copy = common::unique_key("copy");
    let (ok, output) = common::run_command(
        metacrm(&server)
            .arg("restore")
            .arg(&file)
            .args(["--tenant", &copy]),
    );
    assert!(ok, "{output}");

    // Users and their passwords came along; so did every record, as it was.
    let admin = login(&server, &copy, common::ADMIN).await;
    let restored = customer_ids(&server, &admin).await;
    for id in &before {
        assert!(restored.contains(id), "customer {id} restored");
    }
    for id in &restored {
        let path = format!("/api/data/customer/{id}");
        assert_eq!(
            text(&server, &admin, &path).await,
            text(&server, &server.token, &path).await,
            "{path}"
        );
        let path = format!("/api/data/customer/{id}/history");
        assert_eq!(
            history(&server, &admin, &path).await,
            history(&server, &server.token, &path).await,
            "{path}"
        );
    }
    for path in [
        "/api/meta",
        "/api/meta/versions",
        "/api/users",
        "/api/departments",
    ] {
        assert_eq!(
            text(&server, &admin, path).await,
            text(&server, &server.token, path).await,
            "{path}"
        );
    }
    let file_path = format!(
        "/api/data/customer/{id}/files/{}",
        upload.body["file"].as_str().unwrap()
    );
    assert_eq!(
        server.fetch(&admin, &file_path).await.bytes,
        "合同内容 v1".as_bytes(),
        "the attachment's bytes"
    );
    // The sales rep logs in to the copy and keeps their own scope.
    let rep = login(&server, &copy, "rep").await;
    assert_eq!(
        customer_ids(&server, &rep).await,
        vec![by_rep.body["id"].as_i64().unwrap()]
    );
    // The search index was rebuilt.
    let found = server
        .call(&admin, Method::GET, "/api/search?q=zhenhua", None)
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(
        found.body["hits"][0]["id"].as_i64(),
        Some(id),
        "{:?}",
        found.body
    );
    // New ids continue after the restored ones.
    let next = server
        .call(
            &admin,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "恢复后新建"})),
        )
        .await;
    assert_eq!(next.status, 201, "{:?}", next.body);
    assert!(next.body["id"].as_i64().unwrap() > *restored.iter().max().unwrap());
    // The archived column and table came along: publishing them back restores their data.
    let back = server
        .call(&admin, Method::PUT, "/api/meta", Some(package()))
        .await;
    assert_eq!(back.status, 200, "{:?}", back.body);
    let record = server
        .call(
            &admin,
            Method::GET,
            &format!("/api/data/customer/{id}"),
            None,
        )
        .await;
    assert_eq!(record.body["employees"], json!(42), "{:?}", record.body);
    let memos = server
        .call(
            &admin,
            Method::POST,
            "/api/data/memo/query",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        memos.body["items"][0]["body"],
        json!("备忘"),
        "{:?}",
        memos.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_restores_are_refused_and_say_why() {
    let server = TestServer::start(package()).await;
    server.create("customer", json!({"name": "甲"})).await;
    let file = server.dir.path().join("backup.zip");
    let (ok, output) = common::run_command(
        metacrm(&server)
            .args(["backup", "--tenant", &server.tenant.key])
            .arg(&file),
    );
    assert!(ok, "{output}");

    // Onto an existing tenant: refused, the tenant untouched.
    let (ok, output) = common::run_command(
        metacrm(&server)
            .arg("restore")
            .arg(&file)
            .args(["--tenant", &server.tenant.key]),
    );
    assert!(!ok);
    assert!(output.contains("already exists"), "{output}");
    assert_eq!(server.records("customer").await.len(), 1);

    // Not a backup.
    let junk = server.dir.path().join("junk.zip");
    std::fs::write(&junk, b"not a zip").unwrap();
    let (ok, output) = common::run_command(
        metacrm(&server)
            .arg("restore")
            .arg(&junk)
            .args(["--tenant", &common::unique_key("junk")]),
    );
    assert!(!ok);
    assert!(output.contains("junk.zip"), "names the file: {output}");

    // A damaged backup (a row missing): refused, and nothing of the new tenant stays,
    // so the same restore from a sound file then succeeds.
    let damaged = server.dir.path().join("damaged.zip");
    drop_last_row(&file, &damaged, "tables/users.jsonl");
    let key = common::unique_key("damaged");
    let (ok, output) = common::run_command(
        metacrm(&server)
            .arg("restore")
            .arg(&damaged)
            .args(["--tenant", &key]),
    );
    assert!(!ok);
    assert!(
        output.contains("users") && output.contains("nothing was kept"),
        "{output}"
    );
    let (ok, output) = common::run_command(
        metacrm(&server)
            .arg("restore")
            .arg(&file)
            .args(["--tenant", &key]),
    );
    assert!(ok, "{output}");

    // A bad tenant key.
    let (ok, output) = common::run_command(
        metacrm(&server)
            .arg("restore")
            .arg(&file)
            .args(["--tenant", "Bad Key"]),
    );
    assert!(!ok);
    assert!(output.contains("tenant"), "{output}");

    // A backup of a tenant that does not exist.
    let (ok, output) = common::run_command(
        metacrm(&server)
            .args(["backup", "--tenant", "no_such_tenant"])
            .arg(server.dir.path().join("none.zip")),
    );
    assert!(!ok);
    assert!(output.contains("no_such_tenant"), "{output}");
}

/// Copies the backup `from` to `to` with the last line of `entry` left out.
fn drop_last_row(from: &std::path::Path, to: &std::path::Path, entry: &str) {
    use std::io::{Read, Write};
    let mut source = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut target = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    for index in 0..source.len() {
        let mut file = source.by_index(index).unwrap();
        let name = file.name().unwrap().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        if name == entry {
            let text = String::from_utf8(bytes).unwrap();
            let mut lines: Vec<&str> = text.lines().collect();
            assert!(lines.pop().is_some(), "{entry} has rows");
            bytes = lines
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes();
        }
        target
            .start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        target.write_all(&bytes).unwrap();
    }
    target.finish().unwrap();
}
