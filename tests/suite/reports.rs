//! Reports over HTTP: every measure, date bucket and reference join checked against
//! figures computed here from the inserted rows; scopes and field masks; the
//! built-in kinds; CSV and XLSX carrying the JSON's numbers; dashboards.

use crate::common;

use std::collections::BTreeMap;
use std::io::Cursor;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "customer", "label": "客户", "title_field": "name", "fields": [
          {"key": "name", "label": "名称", "type": "text", "required": true},
          {"key": "region", "label": "区域", "type": "select",
           "options": [{"value": "east", "label": "华东"}, {"value": "west", "label": "华西"}]}
      ]},
      {"key": "deal", "label": "订单", "title_field": "title", "fields": [
          {"key": "title", "type": "text", "required": true},
          {"key": "customer", "label": "客户", "type": "reference", "target": "customer"},
          {"key": "amount", "label": "金额", "type": "decimal", "scale": 2},
          {"key": "quantity", "label": "数量", "type": "integer"},
          {"key": "ordered_on", "label": "下单日期", "type": "date"},
          {"key": "signed_at", "label": "签约时间", "type": "datetime"}
      ],
      "pipeline": {"stages": [
          {"key": "lead", "label": "线索", "probability": 10},
          {"key": "quote", "label": "报价", "probability": 40},
          {"key": "won", "label": "成交", "probability": 100, "won": true},
          {"key": "lost", "label": "丢单", "probability": 0, "lost": true}],
       "transitions": "forward"}}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "deal", "actions": ["read", "update"], "scope": "own"},
          {"entity": "customer", "actions": ["read"], "scope": "all"}]},
      {"key": "manager", "permissions": [
          {"entity": "deal", "actions": ["read"], "scope": "subordinates"},
          {"entity": "customer", "actions": ["read"], "scope": "all"}]},
      {"key": "auditor", "permissions": [
          {"entity": "deal", "actions": ["read"], "scope": "all", "deny_read": ["amount"]}]}
    ],
    "reports": [
      {"key": "by_region", "label": "区域业绩", "entity": "deal",
       "group_by": [{"field": "customer.region"}],
       "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount", "label": "金额"}],
       "chart": "bar", "roles": ["sales", "manager", "auditor"]},
      {"key": "funnel", "label": "漏斗", "entity": "deal", "kind": "funnel",
       "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}], "roles": ["manager"]},
      {"key": "managers_only", "entity": "deal", "group_by": [{"field": "stage"}],
       "roles": ["manager"]}
    ],
    "dashboards": [
      {"key": "home", "label": "首页", "reports": ["by_region", "funnel", "managers_only"],
       "roles": ["sales", "manager"]}
    ]})
}

/// One inserted deal, as the test knows it.
#[derive(Debug, Clone)]
struct Deal {
    id: i64,
    owner: &'static str,
    region: &'static str,
    customer: i64,
    /// In cents.
    cents: i64,
    quantity: i64,
    ordered_on: NaiveDate,
    /// The China-local date of `signed_at`.
    signed_on: NaiveDate,
    stage: &'static str,
}

struct Fixture {
    server: TestServer,
    deals: Vec<Deal>,
    users: BTreeMap<&'static str, (i64, String)>,
    customer_names: BTreeMap<i64, String>,
}

const OWNERS: [&str; 3] = ["east1", "east2", "west1"];
const STAGES: [&str; 4] = ["lead", "quote", "won", "lost"];

/// Sales department (managed by `mgr`) with 华东 (east1, east2) and 华西 (west1);
/// four customers; 30 deals over this year and last, some moved along the pipeline.
async fn fixture() -> Fixture {
    let server = TestServer::start(package()).await;
    let mut users = BTreeMap::new();
    let (mgr, mgr_token) = server.user("mgr", &["manager"], None).await;
    let sales = server.department("销售部", None, Some(mgr)).await;
    let east = server.department("华东组", Some(sales), None).await;
    let west = server.department("华西组", Some(sales), None).await;
    server
        .call(
            &server.token,
            Method::PATCH,
            &format!("/api/users/{mgr}"),
            Some(json!({"department": sales})),
        )
        .await;
    users.insert("mgr", (mgr, mgr_token));
    for (name, department) in [("east1", east), ("east2", east), ("west1", west)] {
        users.insert(name, server.user(name, &["sales"], Some(department)).await);
    }
    users.insert("auditor", server.user("auditor", &["auditor"], None).await);
    users.insert("nobody", server.user("nobody", &[], None).await);

    let mut customers = Vec::new();
    let mut customer_names = BTreeMap::new();
    for (name, region) in [
        ("深圳市震华信息技术有限公司", "east"),
        ("上海明远贸易有限公司", "east"),
        ("成都天府机械厂", "west"),
        ("重庆山城物流", "west"),
    ] {
        let record = server
            .create("customer", json!({"name": name, "region": region}))
            .await;
        let id = record["id"].as_i64().unwrap();
        customers.push((id, region));
        customer_names.insert(id, name.to_string());
    }

    let this_year = metacrm::clock::today().year();
    let mut deals = Vec::new();
    for i in 0..30i64 {
        let owner = OWNERS[(i % 3) as usize];
        let (customer, region) = customers[(i * 7 % 4) as usize];
        let cents = 10_000 + i * 12_345 % 900_000;
        let quantity = 1 + i * 5 % 17;
        let year = if i % 3 == 0 { this_year - 1 } else { this_year };
        let ordered_on =
            NaiveDate::from_ymd_opt(year, (i % 12 + 1) as u32, (i % 27 + 1) as u32).unwrap();
        // 17:30 UTC is 01:30 the next day in China: buckets must take the local date.
        let signed_at: DateTime<Utc> = ordered_on.and_hms_opt(17, 30, 0).unwrap().and_utc();
        let stage = STAGES[(i % 4) as usize];
        let owner_id = users[owner].0;
        let record = server
            .create(
                "deal",
                json!({
                    "title": format!("订单{i}"), "customer": customer,
                    "amount": format!("{}.{:02}", cents / 100, cents % 100),
                    "quantity": quantity, "ordered_on": ordered_on.to_string(),
                    "signed_at": signed_at.to_rfc3339(), "owner": owner_id,
                }),
            )
            .await;
        let id = record["id"].as_i64().unwrap();
        // Walk the pipeline so the stage history has every step.
        let path = match stage {
            "quote" => vec!["quote"],
            "won" => vec!["quote", "won"],
            "lost" if i % 8 == 3 => vec!["quote", "lost"],
            "lost" => vec!["lost"],
            _ => vec![],
        };
        for to in path {
            let moved = server
                .post(&format!("/api/data/deal/{id}/stage"), json!({"to": to}))
                .await;
            assert_eq!(moved.status, 200, "{:?}", moved.body);
        }
        deals.push(Deal {
            id,
            owner,
            region,
            customer,
            cents,
            quantity,
            ordered_on,
            signed_on: ordered_on + Duration::days(1),
            stage,
        });
    }
    Fixture {
        server,
        deals,
        users,
        customer_names,
    }
}

impl Fixture {
    async fn run_as(&self, user: Option<&str>, report: Value) -> Value {
        let token = user.map_or(self.server.token.clone(), |u| self.users[u].1.clone());
        let reply = self
            .server
            .call(&token, Method::POST, "/api/reports/run", Some(report))
            .await;
        assert_eq!(reply.status, 200, "{:#?}", reply.body);
        reply.body
    }

    async fn get_as(&self, token: &str, path: &str) -> common::Reply {
        self.server.call(token, Method::GET, path, None).await
    }

    async fn run(&self, report: Value) -> Value {
        self.run_as(None, report).await
    }
}

/// Rows keyed by their first cell (as text), the rest of the row as the value.
fn by_first(result: &Value) -> BTreeMap<String, Vec<Value>> {
    result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            let key = match &row[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (key, row[1..].to_vec())
        })
        .collect()
}

fn money(cents: i64) -> Value {
    serde_json::from_str(&rust_decimal::Decimal::new(cents, 2).normalize().to_string()).unwrap()
}

fn count_by<K: Ord>(deals: &[Deal], key: impl Fn(&Deal) -> K) -> BTreeMap<K, i64> {
    let mut counts = BTreeMap::new();
    for deal in deals {
        *counts.entry(key(deal)).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn every_measure_matches_the_rows() {
    let f = fixture().await;
    let result = f
        .run(
            json!({"entity": "deal", "group_by": [{"field": "stage"}], "measures": [
            {"fn": "count"}, {"fn": "sum", "field": "amount"}, {"fn": "avg", "field": "quantity"},
            {"fn": "min", "field": "ordered_on"}, {"fn": "max", "field": "amount"},
            {"fn": "count_distinct", "field": "customer"}]}),
        )
        .await;
    let keys: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "stage",
            "count",
            "sum:amount",
            "avg:quantity",
            "min:ordered_on",
            "max:amount",
            "count_distinct:customer"
        ]
    );
    let order: Vec<&str> = result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(order, STAGES, "stages in pipeline order, not alphabetical");
    let rows = by_first(&result);
    assert_eq!(rows.len(), 4);
    for stage in STAGES {
        let deals: Vec<&Deal> = f.deals.iter().filter(|d| d.stage == stage).collect();
        let n = deals.len() as i64;
        let sum: i64 = deals.iter().map(|d| d.cents).sum();
        let quantity: i64 = deals.iter().map(|d| d.quantity).sum();
        let min = deals.iter().map(|d| d.ordered_on).min().unwrap();
        let max = deals.iter().map(|d| d.cents).max().unwrap();
        let distinct: std::collections::BTreeSet<i64> = deals.iter().map(|d| d.customer).collect();
        let row = &rows[stage];
        assert_eq!(row[0], json!(n), "count of {stage}");
        assert_eq!(row[1], money(sum), "sum of {stage}");
        let avg = row[2].as_f64().unwrap();
        assert!(
            (avg - quantity as f64 / n as f64).abs() < 0.01,
            "avg of {stage}: {avg}"
        );
        assert_eq!(row[3], json!(min.to_string()), "min of {stage}");
        assert_eq!(row[4], money(max), "max of {stage}");
        assert_eq!(row[5], json!(distinct.len()), "count_distinct of {stage}");
    }
    let total: i64 = f.deals.iter().map(|d| d.cents).sum();
    assert_eq!(result["totals"][1], json!(30));
    assert_eq!(result["totals"][2], money(total));
    // Stage labels come with the column; the chart series follow the rows.
    assert_eq!(result["columns"][0]["labels"]["quote"], json!("报价"));
    assert_eq!(result["series"][0]["data"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn date_buckets_take_the_tenant_local_date() {
    let f = fixture().await;
    type Label = fn(NaiveDate) -> String;
    let buckets: [(&str, Label); 5] = [
        ("day", |d| d.to_string()),
        ("week", |d| {
            (d - Duration::days(d.weekday().num_days_from_monday().into())).to_string()
        }),
        ("month", |d| d.format("%Y-%m").to_string()),
        ("quarter", |d| {
            format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1)
        }),
        ("year", |d| d.year().to_string()),
    ];
    for (bucket, label) in buckets {
        for (field, date) in [
            (
                "ordered_on",
                (|d: &Deal| d.ordered_on) as fn(&Deal) -> NaiveDate,
            ),
            ("signed_at", |d: &Deal| d.signed_on),
        ] {
            let result = f
                .run(json!({"entity": "deal",
                    "group_by": [{"field": field, "bucket": bucket}], "measures": [{"fn": "count"}]}))
                .await;
            let got: BTreeMap<String, i64> = by_first(&result)
                .into_iter()
                .map(|(k, v)| (k, v[0].as_i64().unwrap()))
                .collect();
            let expected = count_by(&f.deals, |d| label(date(d)));
            assert_eq!(got, expected, "{field} by {bucket}");
        }
    }
}

#[tokio::test]
async fn reports_group_through_references() {
    let f = fixture().await;
    let result = f
        .run(
            json!({"entity": "deal", "group_by": [{"field": "customer.region"}],
        "measures": [{"fn": "sum", "field": "amount"}, {"fn": "count"}]}),
        )
        .await;
    let rows = by_first(&result);
    for region in ["east", "west"] {
        let cents: i64 = f
            .deals
            .iter()
            .filter(|d| d.region == region)
            .map(|d| d.cents)
            .sum();
        assert_eq!(rows[region][0], money(cents), "{region}");
    }
    // Totals folded from the groups (sums and counts) match the rows.
    let total: i64 = f.deals.iter().map(|d| d.cents).sum();
    assert_eq!(result["totals"], json!([null, money(total), 30]));
    assert_eq!(result["columns"][0]["labels"]["east"], json!("华东"));
    assert_eq!(result["categories"], json!(["华东", "华西"]));

    // Grouping by the reference itself: the customers' titles label the ids.
    let by_customer = f
        .run(json!({"entity": "deal", "group_by": [{"field": "customer"}]}))
        .await;
    let labels = &by_customer["columns"][0]["labels"];
    for (id, name) in &f.customer_names {
        assert_eq!(labels[id.to_string()], json!(name));
    }
    let counts = count_by(&f.deals, |d| d.customer.to_string());
    for (id, rest) in by_first(&by_customer) {
        assert_eq!(rest[0], json!(counts[&id]));
    }
}

#[tokio::test]
async fn scopes_and_masks_shape_what_each_user_sees() {
    let f = fixture().await;
    let sum_for = |owners: &[&str], region: &str| -> Value {
        money(
            f.deals
                .iter()
                .filter(|d| owners.contains(&d.owner) && d.region == region)
                .map(|d| d.cents)
                .sum(),
        )
    };
    for (user, owners) in [
        ("east1", &["east1"][..]),
        ("west1", &["west1"][..]),
        ("mgr", &["east1", "east2", "west1"][..]),
    ] {
        let token = &f.users[user].1;
        let reply = f.get_as(token, "/api/reports/by_region/run").await;
        assert_eq!(reply.status, 200, "{user}: {:?}", reply.body);
        let rows = by_first(&reply.body);
        for region in ["east", "west"] {
            let expected = sum_for(owners, region);
            let got = rows.get(region).map_or(json!(0), |r| r[1].clone());
            assert_eq!(got, expected, "{user} in {region}");
        }
    }
    // Relative dates and "me" resolve for whoever runs the report.
    let this_year = metacrm::clock::today().year();
    let mine_this_year = json!({"entity": "deal", "filter": {"and": [
        {"field": "owner", "op": "eq", "value": {"user": "me"}},
        {"field": "ordered_on", "op": "gte", "value": {"relative": "start_of_year"}}]}});
    for user in ["east1", "west1", "mgr"] {
        let result = f.run_as(Some(user), mine_this_year.clone()).await;
        let expected = f
            .deals
            .iter()
            .filter(|d| d.owner == user && d.ordered_on.year() == this_year)
            .count();
        assert_eq!(result["rows"][0][0], json!(expected), "{user}");
    }
    // A masked field can be neither measured nor grouped, nor filtered on.
    let auditor = &f.users["auditor"].1;
    let measured = f.get_as(auditor, "/api/reports/by_region/run").await;
    assert_eq!(measured.status, 403, "{:?}", measured.body);
    for report in [
        json!({"entity": "deal", "group_by": [{"field": "amount"}]}),
        json!({"entity": "deal", "measures": [{"fn": "max", "field": "amount"}]}),
    ] {
        let reply = f
            .server
            .call(auditor, Method::POST, "/api/reports/run", Some(report))
            .await;
        assert_eq!(reply.status, 403, "{:?}", reply.body);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("\"amount\" is hidden"), "{message}");
    }
    let filtered = f
        .server
        .call(
            auditor,
            Method::POST,
            "/api/reports/run",
            Some(json!({"entity": "deal",
            "filter": {"field": "amount", "op": "gt", "value": 100}})),
        )
        .await;
    assert_eq!(filtered.status, 400, "{:?}", filtered.body);
    // The auditor may not read customers: grouping through them is refused.
    let joined = f
        .server
        .call(
            auditor,
            Method::POST,
            "/api/reports/run",
            Some(json!({"entity": "deal",
            "group_by": [{"field": "customer.region"}]})),
        )
        .await;
    assert_eq!(joined.status, 403, "{:?}", joined.body);

    // Report rights: the role list decides; the list shows what may be run.
    let east1 = &f.users["east1"].1;
    let refused = f.get_as(east1, "/api/reports/managers_only/run").await;
    assert_eq!(refused.status, 403);
    let listed = f.get_as(east1, "/api/reports").await;
    let keys: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["by_region"]);
    let nobody = &f.users["nobody"].1;
    let unreadable = f
        .server
        .call(
            nobody,
            Method::POST,
            "/api/reports/run",
            Some(json!({"entity": "deal"})),
        )
        .await;
    assert_eq!(unreadable.status, 403);
}

#[tokio::test]
async fn funnel_counts_reaches_and_converts_in_stage_order() {
    let f = fixture().await;
    let reply = f.server.get("/api/reports/funnel/run").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let result = reply.body;
    let stages: Vec<&str> = result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(stages, STAGES);
    // How far each deal got along the open stages (lead, quote, won).
    let furthest = |d: &Deal| match d.stage {
        "lead" => 0,
        "quote" => 1,
        "won" => 2,
        _ if visited_quote(d, &f.deals) => 1,
        _ => 0,
    };
    let reached = |position: usize| f.deals.iter().filter(|d| furthest(d) >= position).count();
    let rows = by_first(&result);
    let columns: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "stage",
            "count",
            "sum:amount",
            "reached",
            "conversion",
            "avg_days"
        ]
    );
    for (position, stage) in ["lead", "quote", "won"].into_iter().enumerate() {
        let in_stage = f.deals.iter().filter(|d| d.stage == stage).count();
        assert_eq!(rows[stage][0], json!(in_stage), "count in {stage}");
        assert_eq!(rows[stage][2], json!(reached(position)), "reached {stage}");
        if position > 0 {
            let expected = reached(position) as f64 / reached(position - 1) as f64;
            let got = rows[stage][3].as_f64().unwrap();
            assert!(
                (got - expected).abs() < 0.0001,
                "conversion to {stage}: {got} vs {expected}"
            );
        } else {
            assert_eq!(rows[stage][3], Value::Null);
        }
        assert!(rows[stage][4].as_f64().is_some(), "days in {stage}");
    }
    let lost = f.deals.iter().filter(|d| d.stage == "lost").count();
    assert_eq!(rows["lost"][2], json!(lost));
    assert_eq!(result["chart"], json!("funnel"));
}

/// Lost deals that went through `quote` first (the fixture's `i % 8 == 3`).
fn visited_quote(deal: &Deal, deals: &[Deal]) -> bool {
    let index = deals.iter().position(|d| d.id == deal.id).unwrap();
    index % 8 == 3
}

#[tokio::test]
async fn forecast_weighs_amounts_by_stage_probability() {
    let f = fixture().await;
    let result = f
        .run(json!({"entity": "deal", "kind": "forecast",
            "group_by": [{"field": "ordered_on", "bucket": "year"}],
            "measures": [{"fn": "sum", "field": "amount"}]}))
        .await;
    let probability = |stage: &str| match stage {
        "lead" => 10,
        "quote" => 40,
        "won" => 100,
        _ => 0,
    };
    let rows = by_first(&result);
    assert_eq!(result["columns"][2]["key"], json!("weighted:sum:amount"));
    for (year, row) in rows {
        let deals = f
            .deals
            .iter()
            .filter(|d| d.ordered_on.year().to_string() == year);
        let weighted: i64 = deals.map(|d| d.cents * probability(d.stage)).sum();
        let expected = rust_decimal::Decimal::new(weighted, 4).normalize();
        assert_eq!(row[1].to_string(), expected.to_string(), "{year}");
    }
}

#[tokio::test]
async fn pivots_total_rows_and_columns() {
    let f = fixture().await;
    let result = f
        .run(json!({"entity": "deal", "kind": "pivot",
            "group_by": [{"field": "owner"}, {"field": "customer.region"}],
            "measures": [{"fn": "sum", "field": "quantity"}]}))
        .await;
    let pivot = &result["pivot"];
    let owners: Vec<i64> = pivot["row_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k[0].as_i64().unwrap())
        .collect();
    assert_eq!(pivot["column_keys"], json!(["east", "west"]));
    for (r, owner_id) in owners.iter().enumerate() {
        let owner = f
            .users
            .iter()
            .find(|(_, (id, _))| id == owner_id)
            .unwrap()
            .0;
        let mine: Vec<&Deal> = f.deals.iter().filter(|d| d.owner == *owner).collect();
        for (c, region) in ["east", "west"].into_iter().enumerate() {
            let sum: i64 = mine
                .iter()
                .filter(|d| d.region == region)
                .map(|d| d.quantity)
                .sum();
            let cell = pivot["cells"][r][c].as_i64().unwrap_or(0);
            assert_eq!(cell, sum, "{owner} × {region}");
        }
        let total: i64 = mine.iter().map(|d| d.quantity).sum();
        assert_eq!(pivot["row_totals"][r], json!(total));
    }
    for (c, region) in ["east", "west"].into_iter().enumerate() {
        let total: i64 = f
            .deals
            .iter()
            .filter(|d| d.region == region)
            .map(|d| d.quantity)
            .sum();
        assert_eq!(pivot["column_totals"][c], json!(total));
    }
    let all: i64 = f.deals.iter().map(|d| d.quantity).sum();
    assert_eq!(pivot["total"], json!(all));
    // Owners are labelled with their names.
    assert_eq!(
        result["columns"][0]["labels"][f.users["east1"].0.to_string()],
        json!("east1")
    );
}

#[tokio::test]
async fn comparisons_set_this_period_beside_the_last() {
    let f = fixture().await;
    let result = f
        .run(
            json!({"entity": "deal", "kind": "comparison", "compare": "year",
            "group_by": [{"field": "ordered_on", "bucket": "month"}],
            "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}),
        )
        .await;
    let this_year = metacrm::clock::today().year();
    let keys: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "ordered_on",
            "count",
            "previous:count",
            "change:count",
            "sum:amount",
            "previous:sum:amount",
            "change:sum:amount"
        ]
    );
    for (month, row) in by_first(&result) {
        assert!(
            month.starts_with(&this_year.to_string()),
            "{month} is this year's"
        );
        let in_month = |year: i32| -> Vec<&Deal> {
            f.deals
                .iter()
                .filter(|d| {
                    d.ordered_on.format("%Y-%m").to_string()
                        == month.replacen(&this_year.to_string(), &year.to_string(), 1)
                })
                .collect()
        };
        let now = in_month(this_year).len() as i64;
        let before = in_month(this_year - 1).len() as i64;
        let or_null = |n: i64| if n == 0 { Value::Null } else { json!(n) };
        assert_eq!(row[0], or_null(now), "{month} now");
        assert_eq!(row[1], or_null(before), "{month} a year before");
        if now > 0 && before > 0 {
            let change = row[2].as_f64().unwrap();
            let expected = (now - before) as f64 / before as f64;
            assert!((change - expected).abs() < 0.0001);
        }
    }
    assert_eq!(
        result["period"]["previous"][0],
        json!(format!("{}-01-01", this_year - 1))
    );
}

#[tokio::test]
async fn csv_and_xlsx_carry_the_json_figures() {
    use calamine::{Data, Reader, Xlsx};
    let f = fixture().await;
    let json_reply = f.server.get("/api/reports/by_region/run").await;
    let rows = by_first(&json_reply.body);

    let csv = f
        .server
        .client
        .get(format!(
            "{}/api/reports/by_region/run?format=csv",
            f.server.base
        ))
        .bearer_auth(&f.server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "区域,数量,金额");
    for (region, label) in [("east", "华东"), ("west", "华西")] {
        let line = format!("{label},{},{}", rows[region][0], rows[region][1]);
        assert!(lines.contains(&line.as_str()), "{line} in {lines:?}");
    }
    let total = json_reply.body["totals"][2].clone();
    assert_eq!(*lines.last().unwrap(), format!("合计,30,{total}"));

    let xlsx = f
        .server
        .client
        .get(format!(
            "{}/api/reports/by_region/run?format=xlsx",
            f.server.base
        ))
        .bearer_auth(&f.server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status(), 200);
    let bytes = xlsx.bytes().await.unwrap();
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let cells: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    assert_eq!(cells[0][0], Data::String("区域".into()));
    for row in &cells[1..3] {
        let region = match &row[0] {
            Data::String(s) if s == "华东" => "east",
            Data::String(s) if s == "华西" => "west",
            other => panic!("unexpected region cell {other:?}"),
        };
        assert_eq!(
            row[1],
            Data::Float(rows[region][0].as_f64().unwrap()),
            "typed count"
        );
        assert_eq!(
            row[2],
            Data::Float(rows[region][1].as_f64().unwrap()),
            "typed amount"
        );
    }
    assert_eq!(cells[3][0], Data::String("合计".into()));
    assert_eq!(cells[3][2], Data::Float(total.as_f64().unwrap()));

    let unknown = f.server.get("/api/reports/by_region/run?format=pdf").await;
    assert_eq!(unknown.status, 400);
}

#[tokio::test]
async fn bad_definitions_are_refused_with_their_path() {
    let f = fixture().await;
    for (report, path) in [
        (
            json!({"entity": "deal", "group_by": [{"field": "colour"}]}),
            "report.group_by[0].field",
        ),
        (
            json!({"entity": "deal", "measures": [{"fn": "sum", "field": "title"}]}),
            "report.measures[0].field",
        ),
        (
            json!({"entity": "deal", "group_by": [{"field": "title", "bucket": "month"}]}),
            "report.group_by[0].bucket",
        ),
        (
            json!({"entity": "deal", "kind": "pivot", "group_by": [{"field": "stage"}]}),
            "report.group_by",
        ),
        (
            json!({"entity": "deal", "measures": [{"fn": "median", "field": "amount"}]}),
            "report.measures[0].fn",
        ),
        (
            json!({"entity": "deal", "sort": [{"field": "amount"}]}),
            "report.sort[0].field",
        ),
    ] {
        let reply = f.server.post("/api/reports/run", report.clone()).await;
        assert_eq!(reply.status, 422, "{report}: {:?}", reply.body);
        let paths: Vec<&str> = reply.body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.iter().any(|p| p.starts_with(path)),
            "{path} in {paths:?}"
        );
    }
    let bad_filter = f
        .server
        .post(
            "/api/reports/run",
            json!({"entity": "deal",
            "filter": {"field": "ordered_on", "op": "gte", "value": {"relative": "someday"}}}),
        )
        .await;
    assert_eq!(bad_filter.status, 400, "{:?}", bad_filter.body);
    assert!(
        bad_filter.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("filter.value")
    );
    // Publishing a package with a bad report changes nothing and names the path.
    let mut package = package();
    package["reports"][0]["group_by"][0]["field"] = json!("customer.colour");
    let reply = f.server.put("/api/meta", package).await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.body["error"]["details"][0]["path"],
        json!("reports[0].group_by[0].field")
    );
    let still = f.server.get("/api/reports/by_region").await;
    assert_eq!(still.body["group_by"][0]["field"], json!("customer.region"));
}

#[tokio::test]
async fn dashboards_run_their_reports_for_the_viewer() {
    let f = fixture().await;
    let east1 = &f.users["east1"].1;
    let reply = f.get_as(east1, "/api/dashboards/home").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let panels = reply.body["reports"].as_array().unwrap();
    assert_eq!(panels.len(), 3);
    let mine: i64 = f.deals.iter().filter(|d| d.owner == "east1").count() as i64;
    let counted: i64 = panels[0]["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_i64().unwrap())
        .sum();
    assert_eq!(counted, mine);
    // The sales role may not run the managers' reports: their panels say so.
    assert_eq!(panels[1]["error"]["code"], json!("forbidden"));
    assert_eq!(panels[2]["error"]["code"], json!("forbidden"));
    let nobody = &f.users["nobody"].1;
    let refused = f.get_as(nobody, "/api/dashboards/home").await;
    assert_eq!(refused.status, 403);
    let listed = f.get_as(nobody, "/api/dashboards").await;
    assert_eq!(listed.body["items"], json!([]));
}

#[tokio::test]
async fn people_save_share_and_remove_their_own_reports() {
    let f = fixture().await;
    let (east1, east2) = (&f.users["east1"].1, &f.users["east2"].1);
    let definition = json!({"key": "my_stages", "label": "我的阶段", "entity": "deal",
        "group_by": [{"field": "stage"}], "measures": [{"fn": "count"}]});
    let saved = f
        .server
        .call(
            east1,
            Method::POST,
            "/api/reports",
            Some(definition.clone()),
        )
        .await;
    assert_eq!(saved.status, 201, "{:?}", saved.body);
    let listed = f.get_as(east1, "/api/reports").await;
    let mine = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "my_stages")
        .expect("listed");
    assert_eq!(mine["saved"], json!(true));
    assert_eq!(mine["owner"], json!(f.users["east1"].0));

    let count_of = |user: &str| f.deals.iter().filter(|d| d.owner == user).count() as i64;
    let total = |reply: &common::Reply| -> i64 {
        reply.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[1].as_i64().unwrap())
            .sum()
    };
    let run = f.get_as(east1, "/api/reports/my_stages/run").await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert_eq!(total(&run), count_of("east1"));
    // Not shared yet: someone else does not even see it.
    let hidden = f.get_as(east2, "/api/reports/my_stages/run").await;
    assert_eq!(hidden.status, 404);

    let mut shared = definition.clone();
    shared["roles"] = json!(["sales"]);
    let replaced = f
        .server
        .call(
            east1,
            Method::PUT,
            "/api/reports/my_stages",
            Some(shared.clone()),
        )
        .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    let theirs = f.get_as(east2, "/api/reports/my_stages/run").await;
    assert_eq!(theirs.status, 200, "{:?}", theirs.body);
    assert_eq!(
        total(&theirs),
        count_of("east2"),
        "a shared report runs in the viewer's scope"
    );
    for method in [Method::PUT, Method::DELETE] {
        let body = (method == Method::PUT).then(|| shared.clone());
        let refused = f
            .server
            .call(east2, method, "/api/reports/my_stages", body)
            .await;
        assert_eq!(refused.status, 403, "{:?}", refused.body);
    }

    for (body, status) in [
        (definition.clone(), 409),
        (json!({"key": "by_region", "entity": "deal"}), 409),
        (json!({"key": "My Stages", "entity": "deal"}), 422),
        (
            json!({"key": "broken", "entity": "deal", "group_by": [{"field": "colour"}]}),
            422,
        ),
    ] {
        let reply = f
            .server
            .call(east1, Method::POST, "/api/reports", Some(body.clone()))
            .await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
    }
    let removed = f
        .server
        .call(east1, Method::DELETE, "/api/reports/my_stages", None)
        .await;
    assert_eq!(removed.status, 204);
    let gone = f.get_as(east1, "/api/reports/my_stages/run").await;
    assert_eq!(gone.status, 404);
}

/// A result cut at the report's limit (or the row cap) says so, in words.
#[tokio::test]
async fn a_cut_result_says_so() {
    let f = fixture().await;
    let report = |limit: u32| {
        json!({"entity": "deal", "group_by": [{"field": "stage"}], "measures": [{"fn": "count"}],
               "limit": limit})
    };
    let cut = f.run(report(1)).await;
    assert_eq!(cut["rows"].as_array().unwrap().len(), 1);
    assert_eq!(cut["truncated"], true);
    let notice = cut["notice"].as_str().unwrap();
    assert!(notice.contains("only the first 1 rows"), "{notice}");
    let whole = f.run(report(1000)).await;
    assert_eq!(whole["truncated"], false);
    assert!(whole.get("notice").is_none(), "{whole:?}");
}
