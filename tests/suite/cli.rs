//! The `metacrm` command line: help, tenant creation, apply with a dry run, and
//! `serve --demo` started twice (idempotent, same login).

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

fn metacrm(data: &std::path::Path) -> Command {
    common::metacrm_command(data)
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = common::run_command(metacrm(dir.path()).arg("--help"));
    assert!(ok, "{text}");
    for command in ["serve", "migrate", "tenant", "apply"] {
        assert!(
            text.contains(command),
            "--help does not mention {command}: {text}"
        );
    }
    let (ok, text) = common::run_command(metacrm(dir.path()).args(["apply", "--help"]));
    assert!(ok);
    assert!(
        text.contains("--dry-run") && text.contains("one transaction"),
        "{text}"
    );
}

#[test]
fn tenant_create_and_apply_with_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let key = common::unique_key("cli");
    let (ok, text) = common::run_command(metacrm(dir.path()).args([
        "tenant",
        "create",
        &key,
        "--name",
        "震华",
        "--admin",
        "boss",
        "--password",
        "long enough",
    ]));
    assert!(ok, "{text}");
    let (ok, text) = common::run_command(metacrm(dir.path()).args([
        "tenant",
        "create",
        &key,
        "--name",
        "again",
        "--admin",
        "boss",
        "--password",
        "long enough",
    ]));
    assert!(!ok && text.contains("already exists"), "{text}");

    let package = dir.path().join("package.json");
    let body = json!({"format": 1, "entities": [{"key": "customer", "fields": [{"key": "name", "type": "text", "indexed": true}]}]});
    std::fs::write(&package, body.to_string()).unwrap();
    let (ok, text) = common::run_command(metacrm(dir.path()).arg("apply").arg(&package).args([
        "--tenant",
        &key,
        "--dry-run",
    ]));
    assert!(ok, "{text}");
    assert!(
        text.contains("CreateTable customer") && text.contains("CREATE TABLE"),
        "{text}"
    );
    assert!(
        text.contains("dry run: 2 steps planned, nothing changed"),
        "{text}"
    );
    let (ok, text) = common::run_command(
        metacrm(dir.path())
            .arg("apply")
            .arg(&package)
            .args(["--tenant", &key]),
    );
    assert!(ok && text.contains("published version 1"), "{text}");
    let (ok, text) = common::run_command(
        metacrm(dir.path())
            .arg("apply")
            .arg(&package)
            .args(["--tenant", &key]),
    );
    assert!(
        ok && text.contains("nothing to change; still version 1"),
        "{text}"
    );

    std::fs::write(
        &package,
        json!({"format": 1, "entities": [{"key": "order", "fields": []}]}).to_string(),
    )
    .unwrap();
    let (ok, text) = common::run_command(
        metacrm(dir.path())
            .arg("apply")
            .arg(&package)
            .args(["--tenant", &key]),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("entities[0].key") && text.contains("reserved"),
        "{text}"
    );
    let (ok, text) = common::run_command(
        metacrm(dir.path())
            .arg("apply")
            .arg(&package)
            .args(["--tenant", "no_such_tenant"]),
    );
    assert!(!ok && text.contains("not found"), "{text}");
}

/// Starts `serve --demo` and returns the child and the password it printed. On
/// PostgreSQL it runs on a database of its own (`ScratchDatabase` says why).
fn start_demo(
    data: &std::path::Path,
    database: Option<&common::ScratchDatabase>,
    tenant: &str,
    port: u16,
) -> (Child, String) {
    let mut command = metacrm(data);
    if let Some(database) = database {
        command.env("DATABASE_URL", &database.url);
    }
    let mut child = command
        .args([
            "serve",
            "--demo",
            "--demo-tenant",
            tenant,
            // A small generated demo: the 5,000 customers of the default take a minute
            // in a debug build.
            "--demo-customers",
            "40",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut password = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("password \"").nth(1) {
            password = rest.split('"').next().map(String::from);
        }
        if line.contains("listening on") {
            break;
        }
    }
    (child, password.expect("serve --demo printed no password"))
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_demo_is_idempotent_and_prints_a_working_login() {
    let dir = tempfile::tempdir().unwrap();
    let database = common::ScratchDatabase::create("demo").await;
    let tenant = common::unique_key("demo");
    let port = common::free_port();
    let (mut first, password) = start_demo(dir.path(), database.as_ref(), &tenant, port);
    let client = reqwest::Client::new();
    let login = |password: String| {
        let (client, tenant) = (client.clone(), tenant.clone());
        async move {
            let reply = client
                .post(format!("http://127.0.0.1:{port}/api/auth/login"))
                .json(&json!({"tenant": tenant, "username": "admin", "password": password}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200);
            let body: serde_json::Value = reply.json().await.unwrap();
            body["token"].as_str().unwrap().to_string()
        }
    };
    let token = login(password.clone()).await;
    let meta: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/api/meta"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entities = meta["entities"].as_array().unwrap();
    assert!(
        !entities.is_empty(),
        "the demo tenant has the template's entities"
    );
    let customers: serde_json::Value = client
        .post(format!("http://127.0.0.1:{port}/api/data/customer/query"))
        .bearer_auth(&token)
        .json(&json!({"limit": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        customers["items"].as_array().unwrap().len() >= 40,
        "the generated customers are there"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut second, again) = start_demo(dir.path(), database.as_ref(), &tenant, port);
    assert_eq!(
        again, password,
        "a restart reuses the demo tenant and its login"
    );
    login(again).await;
    second.kill().unwrap();
    second.wait().unwrap();
}
