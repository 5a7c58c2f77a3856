//! Attachment files: upload, attach to a record, download only through a record the
//! reader may read; unknown files refused; names cleaned; types sniffed; size capped.

use crate::common;

use chrono::{Duration, Utc};
use common::TestServer;
use metacrm::store::files::FileStore;
use metacrm::workflow::jobs;
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true},
          {"key": "licence", "label": "营业执照", "type": "attachment"},
          {"key": "contract", "label": "合同", "type": "attachment"}
      ]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update"], "scope": "own"}]},
      {"key": "auditor", "permissions": [
          {"entity": "customer", "actions": ["read"], "scope": "all", "deny_read": ["contract"]}]}
    ]})
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

async fn download(server: &TestServer, token: &str, path: &str) -> (u16, Vec<u8>, Option<String>) {
    let fetched = server.fetch(token, path).await;
    let disposition = fetched.header("content-disposition");
    (fetched.status, fetched.bytes, disposition)
}

#[tokio::test]
async fn files_are_read_through_their_record() {
    let server = TestServer::start(package()).await;
    let (_, sales) = server.user("sales1", &["sales"], None).await;
    let (_, other) = server.user("sales2", &["sales"], None).await;
    let (_, auditor) = server.user("auditor", &["auditor"], None).await;

    let licence = server
        .upload_as(&sales, "C:\\扫描件\\营业执照.png", PNG)
        .await;
    assert_eq!(licence.status, 200, "{:?}", licence.body);
    assert_eq!(
        licence.body["name"], "营业执照.png",
        "the folder is dropped"
    );
    assert_eq!(
        licence.body["content_type"], "image/png",
        "sniffed from the bytes"
    );
    assert_eq!(licence.body["size"], PNG.len());
    let contract = server
        .upload_as(&sales, "合同.txt", "甲方：深圳市震华".as_bytes())
        .await;
    assert_eq!(contract.body["content_type"], "text/plain; charset=utf-8");

    let created = server
        .call(
            &sales,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "深圳市震华信息技术有限公司", "licence": [licence.body], "contract": [contract.body]})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    let file = licence.body["file"].as_str().unwrap();
    let path = format!("/api/data/customer/{id}/files/{file}");

    let (status, bytes, disposition) = download(&server, &sales, &path).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PNG, "the same bytes come back");
    let disposition = disposition.expect("served as a download");
    assert!(
        disposition.starts_with("attachment;")
            && disposition.contains("filename*=UTF-8''%E8%90%A5"),
        "{disposition}"
    );
    // Another salesperson cannot reach the record, so not the file either.
    assert_eq!(download(&server, &other, &path).await.0, 404);
    // The auditor reads the record, but the contract field is masked from them.
    assert_eq!(download(&server, &auditor, &path).await.0, 200);
    let contract_path = format!(
        "/api/data/customer/{id}/files/{}",
        contract.body["file"].as_str().unwrap()
    );
    assert_eq!(download(&server, &auditor, &contract_path).await.0, 404);
    // A file not held by this record is not served through it.
    let stray = server.upload_as(&sales, "别的.txt", b"other").await;
    let stray_path = format!(
        "/api/data/customer/{id}/files/{}",
        stray.body["file"].as_str().unwrap()
    );
    assert_eq!(download(&server, &sales, &stray_path).await.0, 404);
    assert_eq!(
        download(
            &server,
            &sales,
            &format!("/api/data/customer/{id}/files/..%2F..%2Fsystem.db")
        )
        .await
        .0,
        404
    );

    // A record in the recycle bin keeps its file: restoring it loses nothing.
    let deleted = server.delete(&format!("/api/data/customer/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(stored(&server).read(file).await.unwrap(), PNG);
}

/// The tenant's file store, whichever backend the run configured.
fn stored(server: &TestServer) -> FileStore {
    FileStore::for_tenant(&server.tenants.platform, &server.tenant.key)
}

#[tokio::test]
async fn uploads_never_attached_are_swept_after_a_day() {
    let server = TestServer::start(package()).await;
    let token = server.token.clone();
    let kept = server.upload_as(&token, "执照.png", PNG).await.body;
    let created = server
        .post(
            "/api/data/customer",
            json!({"name": "华润万家", "licence": [kept]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let stray = server
        .upload_as(&token, "草稿.txt", "未用的草稿".as_bytes())
        .await
        .body;
    let logo = server
        .upload_as(&token, "logo.txt", "公司标志".as_bytes())
        .await
        .body;
    let mut branded = package();
    branded["branding"] = json!({"company": "测试公司", "logo": logo["file"]});
    server.tenant.apply(&branded, None, false).await.unwrap();

    let listed = server.get("/api/files/unattached").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let listed: Vec<&str> = listed.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&stray["file"].as_str().unwrap()),
        "{listed:?}"
    );
    assert!(
        !listed.contains(&kept["file"].as_str().unwrap()),
        "attached: {listed:?}"
    );
    let (_, sales) = server.user("sales1", &["sales"], None).await;
    let forbidden = server
        .call(&sales, Method::GET, "/api/files/unattached", None)
        .await;
    assert_eq!(forbidden.status, 403);

    let tenant = Some(server.tenant.key.as_str());
    let now = Utc::now();
    let early = jobs::run(&server.tenants, tenant, now).await.unwrap();
    assert!(early.iter().all(|r| r.job != "files_sweep"), "{early:?}");
    let stray_file = stray["file"].as_str().unwrap();
    assert!(
        stored(&server).read(stray_file).await.is_ok(),
        "a fresh upload waits"
    );

    let later = jobs::run(&server.tenants, tenant, now + Duration::hours(25))
        .await
        .unwrap();
    let swept: Vec<_> = later.iter().filter(|r| r.job == "files_sweep").collect();
    assert_eq!(swept.len(), 1, "{later:?}");
    assert_eq!(swept[0].count, 1, "only the stray upload: {later:?}");
    assert!(stored(&server).read(stray_file).await.is_err(), "swept");
    let kept_file = kept["file"].as_str().unwrap();
    assert_eq!(stored(&server).read(kept_file).await.unwrap(), PNG);
    let logo_file = logo["file"].as_str().unwrap();
    assert!(
        stored(&server).read(logo_file).await.is_ok(),
        "the logo stays"
    );

    // The swept file is gone for records too, until it is uploaded again.
    let refused = server
        .post(
            "/api/data/customer",
            json!({"name": "沃尔玛", "contract": [stray]}),
        )
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    let again = server
        .upload_as(&token, "草稿.txt", "未用的草稿".as_bytes())
        .await;
    assert_eq!(again.body["file"], stray["file"]);
    let attached = server
        .post(
            "/api/data/customer",
            json!({"name": "沃尔玛", "contract": [again.body]}),
        )
        .await;
    assert_eq!(attached.status, 201, "{:?}", attached.body);
    let after = jobs::run(&server.tenants, tenant, now + Duration::hours(50))
        .await
        .unwrap();
    assert!(after.iter().all(|r| r.job != "files_sweep"), "{after:?}");
    assert!(stored(&server).read(stray_file).await.is_ok());
}

#[tokio::test]
async fn bad_uploads_and_unknown_files_are_refused() {
    let server = TestServer::start(package()).await;
    let token = server.token.clone();
    let empty = server.upload_as(&token, "空.txt", b"").await;
    assert_eq!(empty.status, 422);
    assert_eq!(empty.body["error"]["details"][0]["field"], "file");
    let unnamed = server.upload_as(&token, "  ", b"x").await;
    assert_eq!(unnamed.status, 422);
    assert_eq!(unnamed.body["error"]["details"][0]["field"], "name");
    let too_big = server
        .upload_as(
            &token,
            "大.bin",
            &vec![7u8; metacrm::api::MAX_BODY_BYTES + 1],
        )
        .await;
    assert_eq!(too_big.status, 413);

    let forged = json!({"file": "a".repeat(64), "name": "伪造.pdf", "size": 1});
    let refused = server
        .post(
            "/api/data/customer",
            json!({"name": "华润万家", "licence": [forged]}),
        )
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["details"][0]["field"], "licence");
    let listed = server.post("/api/data/customer/query", json!({})).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was written");

    let anonymous = server
        .client
        .post(format!("{}/api/files?name=x.txt", server.base))
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}
