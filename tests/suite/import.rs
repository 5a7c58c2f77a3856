//! Spreadsheet import: Chinese headers and values coerced, every error with its row and
//! column, dry runs that change nothing, upserts, duplicates, permissions, XLSX,
//! background jobs, and a killed import resumed by the same command.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "industry", "label": "行业", "title_field": "name", "fields": [
          {"key": "name", "label": "名称", "type": "text", "required": true, "unique": true}]},
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "label": "客户名称", "type": "text", "required": true, "searchable": true},
          {"key": "code", "label": "客户编号", "type": "text", "unique": true},
          {"key": "phone", "label": "电话", "type": "phone", "searchable": true},
          {"key": "region", "label": "区域", "type": "select",
           "options": [{"value": "south", "label": "华南"}, {"value": "east", "label": "华东"}]},
          {"key": "tags", "label": "标签", "type": "multi_select",
           "options": [{"value": "vip", "label": "重点"}, {"value": "new", "label": "新客"}]},
          {"key": "listed", "label": "是否上市", "type": "boolean"},
          {"key": "founded", "label": "成立日期", "type": "date"},
          {"key": "visited_at", "label": "拜访时间", "type": "datetime"},
          {"key": "revenue", "label": "年营业额", "type": "decimal", "scale": 2},
          {"key": "staff", "label": "员工人数", "type": "integer", "min": 0},
          {"key": "industry", "label": "所属行业", "type": "reference", "target": "industry"},
          {"key": "rep", "label": "客服专员", "type": "user"},
          {"key": "grade", "label": "等级", "type": "text", "formula": "'A' if revenue and revenue > 1000000 else 'B'"}
      ]}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "customer", "actions": ["create", "read", "update", "import", "export"], "scope": "own",
           "deny_write": ["rep"]},
          {"entity": "industry", "actions": ["read"], "scope": "all"}]},
      {"key": "viewer", "permissions": [
          {"entity": "customer", "actions": ["read"], "scope": "all"}]},
      {"key": "auditor", "permissions": [
          {"entity": "customer", "actions": ["read", "export"], "scope": "all", "deny_read": ["revenue"]},
          {"entity": "industry", "actions": ["read"], "scope": "all"}]}
    ]})
}

async fn import(
    server: &TestServer,
    token: &str,
    entity: &str,
    query: &str,
    bytes: Vec<u8>,
) -> common::Reply {
    let response = server
        .client
        .post(format!("{}/api/import/{entity}?{query}", server.base))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    common::Reply { status, body }
}

async fn all(server: &TestServer, entity: &str) -> Vec<Value> {
    let reply = server
        .post(
            &format!("/api/data/{entity}/query"),
            json!({"limit": 1000, "sort": ["id"]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

fn gb18030(text: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(text).0.into_owned()
}

fn error_at(report: &Value, row: u64, column: &str) -> String {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["row"] == row && e["column"] == column)
        .and_then(|e| e["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!(
                "no error at row {row}, column {column}: {:#}",
                report["errors"]
            )
        })
}

#[tokio::test]
async fn a_gb18030_sheet_with_chinese_values_imports_after_a_dry_run() {
    let server = TestServer::start(package()).await;
    let industry = server.create("industry", json!({"name": "制造业"})).await["id"].clone();
    let (rep, _) = server.user("lihua", &["viewer"], None).await;
    server
        .patch(
            &format!("/api/users/{rep}"),
            json!({"display_name": "李华"}),
            None,
        )
        .await;
    let sheet = "客户名称*,客户编号,电话,区域,标签,是否上市,成立日期,拜访时间,年营业额,员工人数,所属行业,客服专员,负责人,备注\n\
        深圳市震华信息技术有限公司,C001,13800138000,华南,重点、新客,是,2024年3月5日,2024/3/5 14:30,\"￥1,234,567.50\",\"1,200\",制造业,李华,admin,老客户\n\
        广州市白云电器有限公司,C002,020-88886666,east,新客,否,2019/12/1,,1.5万,80,#IND,lihua,,\n\
        上海某某贸易有限公司,C003,,华北,,也许,2024/2/30,,abc,-5,金融业,王五,,\n\
        ,C004,,,,,,,,,,,,\n\
        杭州某某科技有限公司,C001,,,,,,,,,,,,\n\
        \n\
        北京某某咨询有限公司,C006,,,,,20240101,,(100.00),,,,,\n";
    let sheet = sheet.replace("#IND", &format!("#{industry}"));

    let dry = import(
        &server,
        &server.token,
        "customer",
        "dry_run=true",
        gb18030(&sheet),
    )
    .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    let report = dry.body;
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["rows"], 7);
    assert_eq!(report["created"], 3, "{report:#}");
    assert_eq!(report["skipped"], 3, "{report:#}");
    assert_eq!(
        report["unchanged"], 0,
        "a blank line is a row, not a record"
    );
    assert!(report["job"].is_null());
    assert!(error_at(&report, 3, "区域").contains("华北"));
    assert!(error_at(&report, 3, "是否上市").contains("是/否"));
    assert!(error_at(&report, 3, "成立日期").contains("calendar"));
    assert!(error_at(&report, 3, "年营业额").contains("not a number"));
    assert!(error_at(&report, 3, "所属行业").contains("金融业"));
    assert!(error_at(&report, 3, "客服专员").contains("王五"));
    assert!(error_at(&report, 4, "客户名称*").contains("required"));
    assert!(error_at(&report, 5, "客户编号").contains("row 1"));
    assert_eq!(report["ignored_columns"][0]["column"], "备注");
    assert!(
        all(&server, "customer").await.is_empty(),
        "a dry run changes nothing"
    );

    let real = import(&server, &server.token, "customer", "", gb18030(&sheet)).await;
    assert_eq!(real.status, 200, "{:?}", real.body);
    assert_eq!(real.body["created"], 3);
    assert_eq!(
        real.body["errors"], report["errors"],
        "the dry run foretold the errors"
    );
    let job = real.body["job"].as_i64().unwrap();
    let records = all(&server, "customer").await;
    assert_eq!(records.len(), 3);
    let first = &records[0];
    assert_eq!(first["name"], "深圳市震华信息技术有限公司");
    assert_eq!(first["phone"], "13800138000");
    assert_eq!(first["region"], "south");
    assert_eq!(first["tags"], json!(["vip", "new"]));
    assert_eq!(first["listed"], true);
    assert_eq!(first["founded"], "2024-03-05");
    assert_eq!(first["visited_at"], "2024-03-05T06:30:00.000Z");
    assert_eq!(first["revenue"].as_f64(), Some(1234567.5));
    assert_eq!(first["staff"], 1200);
    assert_eq!(first["industry"], industry);
    assert_eq!(first["rep"], rep);
    assert_eq!(first["grade"], "A", "formulas are computed on import");
    let second = &records[1];
    assert_eq!(second["region"], "east");
    assert_eq!(second["revenue"].as_f64(), Some(15000.0));
    assert_eq!(second["listed"], false);
    assert_eq!(second["founded"], "2019-12-01");
    assert_eq!(records[2]["revenue"].as_f64(), Some(-100.0));
    assert_eq!(records[2]["founded"], "2024-01-01");

    let history = server
        .get(&format!("/api/data/customer/{}/history", first["id"]))
        .await;
    assert_eq!(
        history.body["items"][0]["action"], "import",
        "{:?}",
        history.body
    );

    let job = server.get(&format!("/api/import/jobs/{job}")).await;
    assert_eq!(job.status, 200);
    assert_eq!(job.body["status"], "done");
    assert_eq!(job.body["rows_done"], 7);
    assert_eq!(job.body["created"], 3);
}

#[tokio::test]
async fn upsert_updates_matching_records_and_reports_unchanged_ones() {
    let server = TestServer::start(package()).await;
    let first = "客户编号,客户名称,员工人数\nC1,甲公司,10\nC2,乙公司,20\n";
    let reply = import(
        &server,
        &server.token,
        "customer",
        "upsert_on=code",
        first.into(),
    )
    .await;
    assert_eq!(reply.body["created"], 2, "{:?}", reply.body);

    let second = "客户编号,客户名称,员工人数\nC1,甲公司,11\nC2,乙公司,20\nC3,丙公司,\n";
    let reply = import(
        &server,
        &server.token,
        "customer",
        "upsert_on=code",
        second.into(),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        (
            reply.body["created"].as_u64(),
            reply.body["updated"].as_u64(),
            reply.body["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{:?}",
        reply.body
    );
    let records = all(&server, "customer").await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["staff"], 11);

    let by_id = format!("id,员工人数\n{},12\n", records[0]["id"]);
    let reply = import(
        &server,
        &server.token,
        "customer",
        "upsert_on=id",
        by_id.into(),
    )
    .await;
    assert_eq!(reply.body["updated"], 1, "{:?}", reply.body);
    assert_eq!(all(&server, "customer").await[0]["staff"], 12);

    let reply = import(
        &server,
        &server.token,
        "customer",
        "upsert_on=name",
        first.into(),
    )
    .await;
    assert_eq!(reply.status, 400, "upsert_on must be unique");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unique")
    );
}

#[tokio::test]
async fn rows_refused_when_their_batch_is_written_are_named_in_row_order() {
    let server = TestServer::start(package()).await;
    server
        .create("customer", json!({"name": "老客户", "code": "X1"}))
        .await;
    // Row 2's number is held by a record: it is refused when the batch's new records
    // are checked together, after row 3's unreadable cell was found.
    let sheet = "客户名称,客户编号,员工人数\n新客户甲,N1,5\n新客户乙,X1,6\n新客户丙,N3,很多\n新客户丁,N4,8\n";
    let reply = import(
        &server,
        &server.token,
        "customer",
        "duplicates=off",
        sheet.into(),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["created"], 2, "{:?}", reply.body);
    assert_eq!(reply.body["skipped"], 2, "{:?}", reply.body);
    assert!(error_at(&reply.body, 2, "客户编号").contains("already used"));
    error_at(&reply.body, 3, "员工人数");
    let rows: Vec<u64> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [2, 3], "errors in row order");
    let names: Vec<String> = all(&server, "customer")
        .await
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["老客户", "新客户甲", "新客户丁"]);
}

#[tokio::test]
async fn mapping_duplicates_and_bad_requests() {
    let server = TestServer::start(package()).await;
    server
        .create(
            "customer",
            json!({"name": "深圳市震华信息技术有限公司", "phone": "0755-86001234"}),
        )
        .await;
    let sheet = "全称,联系电话\n深圳震华信息技术有限公司,13900001111\n新公司,86001234\n另一家公司,13900001111\n";

    let unmapped = import(&server, &server.token, "customer", "", sheet.into()).await;
    assert_eq!(unmapped.status, 400);
    assert!(
        unmapped.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no column")
    );

    let mapping = urlencode(r#"{"全称":"name","联系电话":"phone"}"#);
    let report = import(
        &server,
        &server.token,
        "customer",
        &format!("dry_run=true&mapping={mapping}"),
        sheet.into(),
    )
    .await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    let duplicates = report.body["duplicates"].as_array().unwrap();
    assert!(
        duplicates
            .iter()
            .any(|d| d["row"] == 1 && d["record"]["title"] == "深圳市震华信息技术有限公司"),
        "{duplicates:?}"
    );
    assert!(
        duplicates.iter().any(|d| d["row"] == 2),
        "same phone: {duplicates:?}"
    );
    assert!(
        duplicates
            .iter()
            .any(|d| d["row"] == 3 && d["same_as_row"] == 1),
        "{duplicates:?}"
    );
    assert_eq!(report.body["created"], 3, "report only lists duplicates");

    let skip = import(
        &server,
        &server.token,
        "customer",
        &format!("duplicates=skip&mapping={mapping}"),
        sheet.into(),
    )
    .await;
    assert_eq!(skip.status, 200, "{:?}", skip.body);
    assert!(
        skip.body["created"].as_u64().unwrap() < 3,
        "{:?}",
        skip.body
    );
    assert!(
        skip.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["row"] == 3),
        "{:?}",
        skip.body
    );

    let wrong = urlencode(r#"{"全称":"nope"}"#);
    let reply = import(
        &server,
        &server.token,
        "customer",
        &format!("mapping={wrong}"),
        sheet.into(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    let twice = "名称,客户名称\n甲,乙\n";
    let reply = import(
        &server,
        &server.token,
        "customer",
        &format!("mapping={}", urlencode(r#"{"名称":"name"}"#)),
        twice.into(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("both map")
    );
    let reply = import(&server, &server.token, "customer", "", Vec::new()).await;
    assert_eq!(reply.status, 400);
    let reply = import(&server, &server.token, "nothing", "", sheet.into()).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        all(&server, "customer").await.len(),
        1 + skip.body["created"].as_u64().unwrap() as usize
    );
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn imports_stay_within_the_importers_rights() {
    let server = TestServer::start(package()).await;
    let (sales, sales_token) = server.user("sales1", &["sales"], None).await;
    let (_, viewer) = server.user("viewer1", &["viewer"], None).await;
    let others = server
        .create("customer", json!({"name": "别人的客户", "code": "X1"}))
        .await;

    let sheet = "客户名称,客户编号\n我的客户,M1\n";
    let reply = import(&server, &viewer, "customer", "", sheet.into()).await;
    assert_eq!(reply.status, 403, "no import right");

    let reply = import(
        &server,
        &sales_token,
        "customer",
        "",
        "客户名称,客服专员\n甲,admin\n".into(),
    )
    .await;
    assert_eq!(reply.status, 403, "deny_write column: {:?}", reply.body);
    assert_eq!(reply.body["error"]["details"][0]["field"], "rep");

    let reply = import(
        &server,
        &sales_token,
        "customer",
        "",
        "客户名称,负责人\n甲,admin\n".into(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["created"], 0);
    assert!(
        error_at(&reply.body, 1, "负责人").contains("may not"),
        "{:?}",
        reply.body
    );

    let sheet = "客户名称,客户编号\n我的客户,M1\n改名,X1\n";
    let reply = import(
        &server,
        &sales_token,
        "customer",
        "upsert_on=code",
        sheet.into(),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["created"], 1);
    assert!(error_at(&reply.body, 2, "客户编号").contains("may not change"));
    let untouched = server
        .get(&format!("/api/data/customer/{}", others["id"]))
        .await;
    assert_eq!(untouched.body["name"], "别人的客户");
    let mine = all(&server, "customer").await;
    assert_eq!(
        mine.iter().find(|r| r["code"] == "M1").unwrap()["owner"],
        sales
    );

    let job = reply.body["job"].as_i64().unwrap();
    assert_eq!(
        server
            .call(
                &viewer,
                Method::GET,
                &format!("/api/import/jobs/{job}"),
                None
            )
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .call(
                &sales_token,
                Method::GET,
                &format!("/api/import/jobs/{job}"),
                None
            )
            .await
            .status,
        200
    );
    let own = server
        .call(&sales_token, Method::GET, "/api/import/jobs", None)
        .await;
    assert!(
        own.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["started_by"] == sales)
    );
}

#[tokio::test]
async fn an_xlsx_of_100000_rows_imports_in_the_background() {
    let server = TestServer::start(package()).await;
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    for (column, header) in [
        "客户名称",
        "客户编号",
        "电话",
        "成立日期",
        "年营业额",
        "是否上市",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, column as u16, *header).unwrap();
    }
    const ROWS: u32 = 100_000;
    for row in 1..=ROWS {
        sheet.write_string(row, 0, format!("客户{row:06}")).unwrap();
        sheet.write_string(row, 1, format!("K{row:06}")).unwrap();
        sheet
            .write_number(row, 2, 13_000_000_000.0 + row as f64)
            .unwrap();
        let day = rust_xlsxwriter::ExcelDateTime::from_ymd(2020, 1, 1 + (row % 28) as u8).unwrap();
        sheet
            .write_datetime_with_format(row, 3, &day, &date)
            .unwrap();
        sheet.write_number(row, 4, row as f64 + 0.25).unwrap();
        sheet.write_boolean(row, 5, row % 2 == 0).unwrap();
    }
    let bytes = book.save_to_buffer().unwrap();

    let response = server
        .client
        .post(format!(
            "{}/api/import/customer?background=true&duplicates=off&name=customers.xlsx",
            server.base
        ))
        .bearer_auth(&server.token)
        .header(
            "content-type",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let started: Value = response.json().await.unwrap();
    let job = started["job"].as_i64().unwrap();
    let mut seen_progress = false;
    let finished = loop {
        let reply = server.get(&format!("/api/import/jobs/{job}")).await;
        assert_eq!(reply.status, 200);
        let done = reply.body["rows_done"].as_u64().unwrap();
        seen_progress |= done > 0 && done < ROWS as u64;
        if reply.body["status"] != "running" {
            break reply.body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(finished["status"], "done", "{finished:#}");
    assert_eq!(finished["created"], ROWS);
    assert_eq!(finished["file_name"], "customers.xlsx");
    assert!(seen_progress, "progress was visible while it ran");
    let last = server
        .post(
            "/api/data/customer/query",
            json!({"filter": {"field": "code", "op": "eq", "value": "K100000"}}),
        )
        .await;
    let record = &last.body["items"][0];
    assert_eq!(record["name"], "客户100000");
    assert_eq!(record["phone"], "13000100000");
    assert_eq!(
        record["founded"],
        format!("2020-01-{:02}", 1 + 100_000 % 28)
    );
    assert_eq!(record["revenue"].as_f64(), Some(100000.25));
    assert_eq!(record["listed"], true);
}

#[tokio::test]
async fn a_killed_import_resumes_without_duplicating_rows() {
    let server = TestServer::start(package()).await;
    const ROWS: usize = 6000;
    let mut csv = String::from("客户名称,客户编号\n");
    for row in 1..=ROWS {
        csv.push_str(&format!("客户{row},R{row}\n"));
    }
    let file = server.dir.path().join("customers.csv");
    std::fs::write(&file, csv).unwrap();
    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_metacrm"));
        command
            .arg("--data")
            .arg(server.dir.path())
            .args([
                "import",
                file.to_str().unwrap(),
                "--tenant",
                &server.tenant.key,
                "--entity",
                "customer",
                "--duplicates",
                "off",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match common::db_config(server.dir.path()).database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        command
    };
    let mut child = command().spawn().unwrap();
    let done_before_kill = loop {
        let jobs = server.get("/api/import/jobs").await;
        let done = jobs.body["items"][0]["rows_done"].as_u64().unwrap_or(0);
        if done > 0 {
            child.kill().unwrap();
            child.wait().unwrap();
            break done;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(done_before_kill < ROWS as u64, "killed mid-way");
    let job = server.get("/api/import/jobs").await.body["items"][0].clone();
    assert_eq!(
        job["status"], "running",
        "a killed run leaves its job unfinished"
    );

    let output = command().output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("resumed after row"), "{text}");
    let jobs = server.get("/api/import/jobs").await;
    assert_eq!(
        jobs.body["items"].as_array().unwrap().len(),
        1,
        "the same job was resumed"
    );
    assert_eq!(jobs.body["items"][0]["status"], "done");
    assert_eq!(jobs.body["items"][0]["created"], ROWS);

    let count = server
        .post(
            "/api/reports/run",
            json!({"entity": "customer", "measures": [{"fn": "count"}]}),
        )
        .await;
    assert_eq!(count.status, 200, "{:?}", count.body);
    assert_eq!(
        count.body["rows"][0][0], ROWS,
        "every row once: {:?}",
        count.body
    );
}

async fn export(server: &TestServer, token: &str, query: &str) -> (u16, Vec<u8>) {
    let fetched = server
        .fetch(token, &format!("/api/export/customer?{query}"))
        .await;
    (fetched.status, fetched.bytes)
}

#[tokio::test]
async fn exports_honour_scope_and_masks_and_import_back_unchanged() {
    let server = TestServer::start(package()).await;
    let (_, sales) = server.user("sales1", &["sales"], None).await;
    let (_, auditor) = server.user("auditor1", &["auditor"], None).await;
    let (_, viewer) = server.user("viewer1", &["viewer"], None).await;
    let industry = server.create("industry", json!({"name": "制造业"})).await["id"].clone();
    server
        .create(
            "customer",
            json!({"name": "甲公司", "code": "A1", "region": "south", "tags": ["vip", "new"],
            "listed": true, "founded": "2024-03-05", "visited_at": "2024-03-05T06:30:00Z",
            "revenue": "1234.50", "staff": 12, "industry": industry}),
        )
        .await;
    let reply = server
        .call(
            &sales,
            Method::POST,
            "/api/data/customer",
            Some(json!({"name": "乙公司", "code": "B1"})),
        )
        .await;
    assert_eq!(reply.status, 201);

    let (status, csv) = export(&server, &server.token, "format=csv&sort=id").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(text.starts_with('\u{feff}'), "a BOM for Excel");
    let mut lines = text.trim_start_matches('\u{feff}').lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("id,客户名称,客户编号"), "{header}");
    assert!(
        header.contains("负责人") && header.contains("年营业额"),
        "{header}"
    );
    let first = lines.next().unwrap();
    for shown in [
        "甲公司",
        "华南",
        "重点、新客",
        "是",
        "2024-03-05",
        "2024-03-05 14:30",
        "1234.5",
        "制造业",
    ] {
        assert!(first.contains(shown), "{shown} in {first}");
    }

    let again = import(&server, &server.token, "customer", "upsert_on=id", csv).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(
        (
            again.body["unchanged"].as_u64(),
            again.body["created"].as_u64(),
            again.body["updated"].as_u64()
        ),
        (Some(2), Some(0), Some(0)),
        "an exported file imports back unchanged: {:#}",
        again.body
    );

    let (status, own) = export(&server, &sales, "").await;
    assert_eq!(status, 200);
    let own = String::from_utf8(own).unwrap();
    assert!(
        own.contains("乙公司") && !own.contains("甲公司"),
        "own scope: {own}"
    );

    let (status, xlsx) = export(&server, &auditor, "format=xlsx&sort=id").await;
    assert_eq!(status, 200);
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(
        !header.contains(&"年营业额".to_string()),
        "masked fields are left out: {header:?}"
    );
    assert_eq!(range.height(), 3);
    let founded = header.iter().position(|h| h == "成立日期").unwrap();
    assert!(
        matches!(
            range.rows().nth(1).unwrap()[founded],
            calamine::Data::DateTime(_)
        ),
        "dates are date cells"
    );
    let staff = header.iter().position(|h| h == "员工人数").unwrap();
    assert_eq!(
        range.rows().nth(1).unwrap()[staff],
        calamine::Data::Float(12.0)
    );

    let filter = urlencode(r#"{"field": "code", "op": "eq", "value": "B1"}"#);
    let (status, filtered) = export(&server, &server.token, &format!("filter={filter}")).await;
    assert_eq!(status, 200);
    let filtered = String::from_utf8(filtered).unwrap();
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert_eq!(
        export(&server, &viewer, "").await.0,
        403,
        "export is its own right"
    );
    assert_eq!(export(&server, &server.token, "format=pdf").await.0, 400);
}

#[tokio::test]
async fn a_metadata_package_moves_between_tenants_with_its_plan_shown() {
    let server = TestServer::start(metacrm::templates::package("crm-base").unwrap()).await;
    let exported = server.get("/api/meta").await;
    assert_eq!(exported.status, 200);
    let key = common::unique_key("other");
    server
        .tenants
        .create(&metacrm::tenant::NewTenant {
            key: &key,
            name: "另一家公司",
            admin: common::ADMIN,
            password: common::PASSWORD,
        })
        .await
        .unwrap();
    let login = server
        .send(
            Method::POST,
            "/api/auth/login",
            Some(json!({"tenant": key, "username": common::ADMIN, "password": common::PASSWORD})),
            None,
            &[],
        )
        .await;
    let other = login.body["token"].as_str().unwrap().to_string();

    let plan = server
        .call(
            &other,
            Method::PUT,
            "/api/meta?dry_run=true",
            Some(exported.body.clone()),
        )
        .await;
    assert_eq!(plan.status, 200, "{:?}", plan.body);
    let steps = plan.body["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["op"] == "create_table" && s["entity"] == "customer"),
        "a plan of {} steps",
        steps.len()
    );
    let unchanged = server.call(&other, Method::GET, "/api/meta", None).await;
    assert!(
        unchanged.body["entities"]
            .as_array()
            .is_none_or(|e| e.is_empty()),
        "a dry run changes nothing"
    );

    let applied = server
        .call(
            &other,
            Method::PUT,
            "/api/meta",
            Some(exported.body.clone()),
        )
        .await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let copy = server.call(&other, Method::GET, "/api/meta", None).await;
    assert_eq!(
        copy.body, exported.body,
        "the other tenant now has the same package"
    );
}
