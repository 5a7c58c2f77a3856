//! Stages and approvals over HTTP: transition rules, required fields, stage history,
//! multi-step flows with conditions, 或签/会签, manager_of up the tree, 退回, 转审,
//! 加签, withdraw, locks, effects, notifications, and a restart mid-flow.

use crate::common;

use std::collections::BTreeMap;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

fn package() -> Value {
    json!({"format": 1,
    "entities": [
      {"key": "deal", "label": "商机", "title_field": "name", "fields": [
          {"key": "name", "type": "text", "required": true},
          {"key": "amount", "type": "decimal", "scale": 2},
          {"key": "discount", "type": "integer"},
          {"key": "phone", "type": "phone"},
          {"key": "contract_no", "type": "text"},
          {"key": "approved", "type": "boolean", "read_only": true},
          {"key": "reviewer", "type": "user"}
       ],
       "pipeline": {"stages": [
          {"key": "contact", "label": "初步接触", "probability": 10},
          {"key": "quote", "label": "报价", "probability": 40, "required_fields": ["phone", "amount"]},
          {"key": "negotiation", "label": "商务会谈", "probability": 60},
          {"key": "signed", "label": "签单", "probability": 100, "won": true, "required_fields": ["contract_no", "phone"]},
          {"key": "lost", "label": "流失", "probability": 0, "lost": true}],
        "transitions": "forward"}},
      {"key": "ticket", "title_field": "title", "fields": [{"key": "title", "type": "text", "required": true}],
       "pipeline": {"stages": [{"key": "open"}, {"key": "working"}, {"key": "done"}],
        "transitions": [{"from": "open", "to": "working"}, {"from": "working", "to": "done"},
                        {"from": "done", "to": "open", "roles": ["manager"]}]}},
      {"key": "project", "title_field": "title", "fields": [
          {"key": "title", "type": "text", "required": true},
          {"key": "budget", "type": "integer"}],
       "pipeline": {"stages": [{"key": "draft"}, {"key": "build", "required_fields": ["budget"]},
                               {"key": "closed"}, {"key": "dropped", "lost": true}],
        "transitions": "any"}}
    ],
    "roles": [
      {"key": "sales", "permissions": [
          {"entity": "deal", "actions": ["create", "read", "update"], "scope": "own"},
          {"entity": "ticket", "actions": ["create", "read", "update"], "scope": "all"},
          {"entity": "project", "actions": ["create", "read", "update"], "scope": "own"}]},
      {"key": "manager", "permissions": [
          {"entity": "deal", "actions": ["read", "update"], "scope": "subordinates"},
          {"entity": "ticket", "actions": ["read", "update"], "scope": "all"}]},
      {"key": "gm", "permissions": [{"entity": "deal", "actions": ["read"], "scope": "all"}]},
      {"key": "finance", "permissions": [{"entity": "deal", "actions": ["read"], "scope": "all"}]}
    ],
    "flows": [
      {"key": "discount", "label": "折扣审批", "entity": "deal",
       "trigger": {"on": "submit", "when": "discount > 10"},
       "steps": [
          {"key": "mgr", "approvers": {"manager_of": "submitter"}},
          {"key": "gm", "approvers": {"role": "gm"}, "when": "amount > 100000"},
          {"key": "finance", "approvers": {"role": "finance"}, "mode": "all"}],
       "on_approve": {"set": {"approved": true}},
       "on_reject": {"stage": "contact"},
       "notify": {"cc": ["finance"]}},
      {"key": "huge", "label": "超大单", "entity": "deal",
       "trigger": {"on": "create", "when": "amount > 1000000"},
       "steps": [{"key": "gm", "approvers": {"role": "gm"}}]},
      {"key": "fast_sign", "label": "特批签单", "entity": "deal",
       "steps": [{"key": "gm", "approvers": {"role": "gm"}}],
       "on_approve": {"stage": "signed"}},
      {"key": "ticket_check", "label": "工单复核", "entity": "ticket",
       "steps": [{"key": "review", "approvers": {"user": "fin2"}}]},
      {"key": "contract_review", "label": "合同审核", "entity": "deal",
       "trigger": {"on": "stage_enter", "stage": "signed"},
       "steps": [{"key": "review", "approvers": {"field": "reviewer"}}],
       "on_approve": {"set": {"approved": true}}}
    ]})
}

/// 销售部 (manager boss) ─ 华东组 (no manager): rep1, rep2; gm1; fin1, fin2.
struct Team {
    server: TestServer,
    ids: BTreeMap<&'static str, i64>,
    tokens: BTreeMap<&'static str, String>,
}

impl Team {
    async fn start() -> Team {
        let server = TestServer::start(package()).await;
        let sales = server.department("销售部", None, None).await;
        let east = server.department("华东组", Some(sales), None).await;
        let mut ids = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for (name, roles, department) in [
            ("boss", &["manager"][..], Some(sales)),
            ("rep1", &["sales"][..], Some(east)),
            ("rep2", &["sales"][..], Some(east)),
            ("gm1", &["gm"][..], None),
            ("fin1", &["finance"][..], None),
            ("fin2", &["finance"][..], None),
        ] {
            let (id, token) = server.user(name, roles, department).await;
            ids.insert(name, id);
            tokens.insert(name, token);
        }
        server
            .patch(
                &format!("/api/departments/{sales}"),
                json!({"manager": ids["boss"]}),
                None,
            )
            .await;
        Team {
            server,
            ids,
            tokens,
        }
    }

    async fn call(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> common::Reply {
        self.server
            .call(&self.tokens[user], method, path, body)
            .await
    }

    async fn deal(&self, user: &str, body: Value) -> i64 {
        let reply = self
            .call(user, Method::POST, "/api/data/deal", Some(body))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["id"].as_i64().unwrap()
    }

    async fn act(&self, user: &str, approval: i64, action: &str, body: Value) -> common::Reply {
        self.call(
            user,
            Method::POST,
            &format!("/api/approvals/{approval}/{action}"),
            Some(body),
        )
        .await
    }

    async fn stage(&self, user: &str, entity: &str, id: i64, to: &str) -> common::Reply {
        self.call(
            user,
            Method::POST,
            &format!("/api/data/{entity}/{id}/stage"),
            Some(json!({"to": to})),
        )
        .await
    }

    async fn submit(&self, user: &str, deal: i64, flow: &str) -> common::Reply {
        self.call(
            user,
            Method::POST,
            &format!("/api/data/deal/{deal}/submit"),
            Some(json!({"flow": flow})),
        )
        .await
    }

    async fn inbox(&self, user: &str) -> Vec<i64> {
        let reply = self
            .call(user, Method::GET, "/api/approvals/inbox", None)
            .await;
        assert_eq!(reply.status, 200);
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    }

    async fn notifications(&self, user: &str) -> Vec<String> {
        let reply = self
            .call(user, Method::GET, "/api/notifications", None)
            .await;
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

fn fields(reply: &common::Reply) -> Vec<String> {
    let mut fields = TestServer::fields_of(reply);
    fields.sort();
    fields
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_transitions_follow_the_pipeline_rules() {
    let team = Team::start().await;
    let deal = team.deal("rep1", json!({"name": "震华项目"})).await;
    let stage = |user: &'static str, to: &'static str| team.stage(user, "deal", deal, to);
    // Entering 报价 needs phone and amount: both listed, nothing changes.
    let missing = stage("rep1", "quote").await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    assert_eq!(fields(&missing), vec!["amount", "phone"]);
    let path = format!("/api/data/deal/{deal}");
    assert_eq!(team.server.get(&path).await.body["stage"], json!("contact"));
    team.call(
        "rep1",
        Method::PATCH,
        &path,
        Some(json!({"phone": "13800138000", "amount": "5000"})),
    )
    .await;
    let moved = stage("rep1", "quote").await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["stage"], json!("quote"));
    // Backwards, unknown, same stage: refused naming `to`.
    for to in ["contact", "nowhere", "quote"] {
        let reply = stage("rep1", to).await;
        assert_eq!(reply.status, 422, "{to}: {:?}", reply.body);
        assert_eq!(fields(&reply), vec!["to"], "{to}");
    }
    // PATCH never moves a stage; someone else's record is out of reach.
    let patched = team
        .call(
            "rep1",
            Method::PATCH,
            &path,
            Some(json!({"stage": "negotiation"})),
        )
        .await;
    assert_eq!(patched.status, 422);
    assert_eq!(fields(&patched), vec!["stage"]);
    assert_eq!(stage("rep2", "negotiation").await.status, 404);
    assert_eq!(
        stage("gm1", "negotiation").await.status,
        403,
        "read-only roles cannot move stages"
    );
    // Forward may skip stages and always reach a lost stage; from lost, nothing is later.
    assert_eq!(stage("rep1", "lost").await.status, 200);
    assert_eq!(stage("rep1", "signed").await.status, 422);
    // The history keeps every stage with its times.
    let history = team.server.get(&format!("{path}/history")).await.body;
    let stages: Vec<&str> = history["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, vec!["contact", "quote", "lost"]);
    assert!(history["stages"][0]["left_at"].is_string());
    assert!(history["stages"][2]["left_at"].is_null());
    assert!(history["stages"][0]["seconds"].as_i64().unwrap() >= 0);
    assert_eq!(history["stages"][1]["by"], json!(team.ids["rep1"]));
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["action"] == "stage")
    );
    // Explicit lists: only listed moves, reopening only by a manager.
    let ticket = team
        .call(
            "rep1",
            Method::POST,
            "/api/data/ticket",
            Some(json!({"title": "投诉"})),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let ticket_stage =
        |user: &'static str, to: &'static str| team.stage(user, "ticket", ticket, to);
    assert_eq!(ticket_stage("rep1", "done").await.status, 422);
    assert_eq!(ticket_stage("rep1", "working").await.status, 200);
    assert_eq!(ticket_stage("rep1", "done").await.status, 200);
    assert_eq!(ticket_stage("rep1", "open").await.status, 422);
    assert_eq!(ticket_stage("boss", "open").await.status, 200);
    // Creating straight into a stage checks that stage's required fields.
    let skipped = team
        .call(
            "rep1",
            Method::POST,
            "/api/data/deal",
            Some(json!({"name": "x", "stage": "signed"})),
        )
        .await;
    assert_eq!(skipped.status, 422);
    assert_eq!(fields(&skipped), vec!["contract_no", "phone"]);
}

/// `transitions: "any"`: every move is allowed, backwards too, and still checks the
/// target's required fields; only the stage it is at is refused.
#[tokio::test(flavor = "multi_thread")]
async fn any_transition_goes_anywhere_but_needs_the_targets_fields() {
    let team = Team::start().await;
    let created = team
        .call(
            "rep1",
            Method::POST,
            "/api/data/project",
            Some(json!({"title": "新仓库"})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["stage"], json!("draft"));
    let project = created.body["id"].as_i64().unwrap();
    let stage = |to: &'static str| team.stage("rep1", "project", project, to);

    // Skipping ahead to a stage with required fields: refused naming them.
    let missing = stage("build").await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    assert_eq!(fields(&missing), vec!["budget"]);
    // Straight to the end, then back to the start and on again, then lost.
    for to in ["closed", "draft"] {
        let moved = stage(to).await;
        assert_eq!(moved.status, 200, "{to}: {:?}", moved.body);
        assert_eq!(moved.body["stage"], json!(to));
    }
    team.call(
        "rep1",
        Method::PATCH,
        &format!("/api/data/project/{project}"),
        Some(json!({"budget": 80000})),
    )
    .await;
    for to in ["build", "dropped", "draft"] {
        assert_eq!(stage(to).await.status, 200, "{to}");
    }
    // The stage it is at, and one that does not exist.
    for to in ["draft", "nowhere"] {
        let refused = stage(to).await;
        assert_eq!(refused.status, 422, "{to}: {:?}", refused.body);
        assert_eq!(fields(&refused), vec!["to"], "{to}");
    }
    let history = team
        .call(
            "rep1",
            Method::GET,
            &format!("/api/data/project/{project}/history"),
            None,
        )
        .await;
    let stages: Vec<&str> = history.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["draft", "closed", "draft", "build", "dropped", "draft"]
    );
}

/// A stage a flow's approval moves the record to starts that stage's flow, as moving
/// it by hand does; flows that would move a record around for ever are refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_stage_set_by_a_flow_starts_the_stages_flow() {
    let team = Team::start().await;
    let deal = team
        .deal(
            "rep1",
            json!({"name": "特批单", "reviewer": team.ids["fin1"], "phone": "13800138000"}),
        )
        .await;
    let approval = team.submit("rep1", deal, "fast_sign").await.body["id"]
        .as_i64()
        .unwrap();
    let approved = team.act("gm1", approval, "approve", json!({})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let path = format!("/api/data/deal/{deal}");
    assert_eq!(team.server.get(&path).await.body["stage"], json!("signed"));
    // 合同审核 started on entering 签单: the reviewer has it, the record is locked.
    let review = team.inbox("fin1").await;
    assert_eq!(review.len(), 1, "{review:?}");
    let locked = team
        .call("rep1", Method::PATCH, &path, Some(json!({"amount": "1"})))
        .await;
    assert_eq!(locked.status, 409, "{:?}", locked.body);
    assert!(
        locked.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("合同审核"),
        "{:?}",
        locked.body
    );
    let done = team.act("fin1", review[0], "approve", json!({})).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(team.server.get(&path).await.body["approved"], json!(true));

    // Two flows whose steps always skip, each moving the record to the other's stage.
    let server = TestServer::start(json!({"format": 1,
        "entities": [{"key": "job", "title_field": "title",
            "fields": [{"key": "title", "type": "text"}],
            "pipeline": {"stages": [{"key": "start"}, {"key": "ping"}, {"key": "pong"}],
                         "transitions": "any"}}],
        "flows": [
            {"key": "ping_flow", "entity": "job", "trigger": {"on": "stage_enter", "stage": "ping"},
             "steps": [{"key": "never", "approvers": {"role": "nobody"}, "when": "1 > 2"}],
             "on_approve": {"stage": "pong"}},
            {"key": "pong_flow", "entity": "job", "trigger": {"on": "stage_enter", "stage": "pong"},
             "steps": [{"key": "never", "approvers": {"role": "nobody"}, "when": "1 > 2"}],
             "on_approve": {"stage": "ping"}}],
        "roles": [{"key": "nobody", "permissions": []}]}))
    .await;
    let job = server.create("job", json!({"title": "循环"})).await["id"]
        .as_i64()
        .unwrap();
    let moved = server
        .post(&format!("/api/data/job/{job}/stage"), json!({"to": "ping"}))
        .await;
    assert_eq!(moved.status, 409, "{:?}", moved.body);
    assert!(
        moved.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stage to stage"),
        "{:?}",
        moved.body
    );
    let unchanged = server.get(&format!("/api/data/job/{job}")).await.body;
    assert_eq!(unchanged["stage"], json!("start"), "nothing changed");
}

/// A step whose approver is a named user goes to that user alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_for_a_named_user_waits_for_that_user() {
    let team = Team::start().await;
    let created = team
        .call(
            "rep1",
            Method::POST,
            "/api/data/ticket",
            Some(json!({"title": "退货复核"})),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let ticket = created.body["id"].as_i64().unwrap();
    let submitted = team
        .call(
            "rep1",
            Method::POST,
            &format!("/api/data/ticket/{ticket}/submit"),
            Some(json!({"flow": "ticket_check"})),
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    let approval = submitted.body["id"].as_i64().unwrap();
    assert_eq!(team.inbox("fin2").await, [approval]);
    assert!(team.inbox("fin1").await.is_empty());
    assert_eq!(
        team.act("fin1", approval, "approve", json!({}))
            .await
            .status,
        403
    );
    assert!(
        team.notifications("fin2")
            .await
            .contains(&"approval_request".to_string())
    );
    let approved = team.act("fin2", approval, "approve", json!({})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["status"], json!("approved"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_step_flow_with_conditions_locks_approves_and_notifies() {
    let team = Team::start().await;
    let deal = team
        .deal(
            "rep1",
            json!({"name": "小单", "amount": "50000", "discount": 20}),
        )
        .await;
    let path = format!("/api/data/deal/{deal}");
    // The flow's condition: a 5 % discount needs no approval.
    let small = team
        .deal("rep1", json!({"name": "无折扣", "discount": 5}))
        .await;
    let refused = team
        .call(
            "rep1",
            Method::POST,
            &format!("/api/data/deal/{small}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await;
    assert_eq!(refused.status, 422);
    let unknown = team
        .call(
            "rep1",
            Method::POST,
            &format!("{path}/submit"),
            Some(json!({"flow": "nope"})),
        )
        .await;
    assert_eq!(unknown.status, 404);

    let submitted = team
        .call(
            "rep1",
            Method::POST,
            &format!("{path}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await;
    assert_eq!(submitted.status, 200, "{:?}", submitted.body);
    let approval = submitted.body["id"].as_i64().unwrap();
    assert_eq!(
        submitted.body["step"],
        json!("mgr"),
        "华东组 has no manager: 销售部's boss approves"
    );
    // Locked while pending: edits, deletes and stage moves answer 409 naming the flow.
    for (method, url, body) in [
        (Method::PATCH, path.clone(), Some(json!({"amount": "1"}))),
        (
            Method::POST,
            format!("{path}/stage"),
            Some(json!({"to": "negotiation"})),
        ),
    ] {
        let reply = team.call("rep1", method.clone(), &url, body).await;
        assert_eq!(reply.status, 409, "{method} {url}: {:?}", reply.body);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("折扣审批")
        );
    }
    let deleted = team.server.delete(&path).await;
    assert_eq!(
        deleted.status, 409,
        "not even an administrator deletes a locked record"
    );
    let again = team
        .call(
            "rep1",
            Method::POST,
            &format!("{path}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await;
    assert_eq!(again.status, 409, "one approval at a time");
    // Only the current step's approvers act.
    assert_eq!(
        team.act("rep2", approval, "approve", json!({}))
            .await
            .status,
        403
    );
    assert_eq!(
        team.act("fin1", approval, "approve", json!({}))
            .await
            .status,
        403
    );
    assert_eq!(team.inbox("boss").await, vec![approval]);
    assert!(
        team.notifications("boss")
            .await
            .contains(&"approval_request".to_string())
    );
    let approved = team
        .act("boss", approval, "approve", json!({"comment": "同意"}))
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(
        approved.body["step"],
        json!("finance"),
        "gm is skipped: amount ≤ 100000"
    );
    assert_eq!(
        team.act("boss", approval, "approve", json!({}))
            .await
            .status,
        403
    );
    // 会签: both finance users must approve.
    assert_eq!(team.inbox("fin1").await, vec![approval]);
    let first = team.act("fin1", approval, "approve", json!({})).await;
    assert_eq!(first.body["status"], json!("pending"));
    assert_eq!(
        team.act("fin1", approval, "approve", json!({}))
            .await
            .status,
        409,
        "approving twice"
    );
    assert_eq!(team.inbox("fin1").await, Vec::<i64>::new());
    let last = team.act("fin2", approval, "approve", json!({})).await;
    assert_eq!(last.status, 200, "{:?}", last.body);
    assert_eq!(last.body["status"], json!("approved"));
    // Effects as the system identity (a read_only field), lock released, people told.
    let record = team.server.get(&path).await.body;
    assert_eq!(record["approved"], json!(true));
    let history = team.server.get(&format!("{path}/history")).await.body;
    let flow_write = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(flow_write["action"], json!("flow:discount"));
    assert_eq!(flow_write["user"], json!(0));
    let actions: Vec<&str> = history["approvals"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "submit", "step", "approve", "skip", "step", "approve", "approve", "approved"
        ]
    );
    assert!(
        team.notifications("rep1")
            .await
            .contains(&"approval_result".to_string())
    );
    assert!(
        team.notifications("fin2")
            .await
            .contains(&"approval_cc".to_string())
    );
    let edit = team
        .call(
            "rep1",
            Method::PATCH,
            &path,
            Some(json!({"amount": "60000"})),
        )
        .await;
    assert_eq!(
        edit.status, 200,
        "unlocked after the decision: {:?}",
        edit.body
    );
    assert_eq!(
        team.act("fin2", approval, "approve", json!({}))
            .await
            .status,
        409
    );
    // Notifications are counted and marked read.
    let unread = team
        .call("rep1", Method::GET, "/api/notifications?unread=true", None)
        .await;
    let count = unread.body["unread"].as_i64().unwrap();
    assert!(count >= 1, "{:?}", unread.body);
    // One by its id, then the rest.
    let first = unread.body["items"][0]["id"].clone();
    let marked = team
        .call(
            "rep1",
            Method::POST,
            "/api/notifications/read",
            Some(json!({"ids": [first]})),
        )
        .await;
    assert_eq!(marked.status, 200, "{:?}", marked.body);
    let fewer = team
        .call("rep1", Method::GET, "/api/notifications?unread=true", None)
        .await;
    assert_eq!(fewer.body["unread"], json!(count - 1));
    let all = team
        .call("rep1", Method::GET, "/api/notifications", None)
        .await;
    let marked_item = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == first)
        .unwrap();
    assert_eq!(marked_item["read"], json!(true));
    team.call(
        "rep1",
        Method::POST,
        "/api/notifications/read",
        Some(json!({})),
    )
    .await;
    let after = team
        .call("rep1", Method::GET, "/api/notifications", None)
        .await;
    assert_eq!(after.body["unread"], json!(0));
    assert!(!after.body["items"].as_array().unwrap().is_empty());
    assert_eq!(
        team.call("fin1", Method::GET, "/api/notifications", None)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "approval_result")
            .count(),
        0,
        "notifications are per user"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_return_delegate_add_withdraw_and_resubmit() {
    let team = Team::start().await;
    let deal = team
        .deal(
            "rep1",
            json!({"name": "大单", "amount": "200000", "discount": 15, "phone": "0755-8888"}),
        )
        .await;
    let path = format!("/api/data/deal/{deal}");
    team.call(
        "rep1",
        Method::POST,
        &format!("{path}/stage"),
        Some(json!({"to": "quote"})),
    )
    .await;
    let submit = || team.submit("rep1", deal, "discount");
    let approval = submit().await.body["id"].as_i64().unwrap();
    assert_eq!(
        team.act("boss", approval, "approve", json!({})).await.body["step"],
        json!("gm")
    );
    // 退回 to an earlier step needs a comment and a real earlier step.
    assert_eq!(
        team.act("gm1", approval, "reject", json!({"to": "mgr"}))
            .await
            .status,
        422
    );
    assert_eq!(
        team.act(
            "gm1",
            approval,
            "reject",
            json!({"to": "finance", "comment": "x"})
        )
        .await
        .status,
        422
    );
    let returned = team
        .act(
            "gm1",
            approval,
            "reject",
            json!({"to": "mgr", "comment": "价格再核"}),
        )
        .await;
    assert_eq!(returned.status, 200, "{:?}", returned.body);
    assert_eq!(returned.body["step"], json!("mgr"));
    assert_eq!(team.inbox("boss").await, vec![approval]);
    // 转审 boss → rep2; rep2 cannot hand it back (a loop) nor to themselves.
    let delegated = team
        .act(
            "boss",
            approval,
            "delegate",
            json!({"to": team.ids["rep2"]}),
        )
        .await;
    assert_eq!(delegated.status, 200, "{:?}", delegated.body);
    assert_eq!(team.inbox("boss").await, Vec::<i64>::new());
    assert_eq!(team.inbox("rep2").await, vec![approval]);
    assert!(
        team.notifications("rep2")
            .await
            .contains(&"approval_request".to_string()),
        "the new approver is told"
    );
    assert_eq!(
        team.act(
            "rep2",
            approval,
            "delegate",
            json!({"to": team.ids["boss"]})
        )
        .await
        .status,
        422
    );
    assert_eq!(
        team.act(
            "rep2",
            approval,
            "delegate",
            json!({"to": team.ids["rep2"]})
        )
        .await
        .status,
        422
    );
    // 加签: rep2 adds gm1 to the step; 或签 — gm1's approval finishes it.
    let added = team
        .act(
            "rep2",
            approval,
            "add_approvers",
            json!({"users": [team.ids["gm1"]]}),
        )
        .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(team.inbox("gm1").await, vec![approval]);
    assert!(
        team.notifications("gm1")
            .await
            .contains(&"approval_request".to_string()),
        "an added approver is told"
    );
    let next = team.act("gm1", approval, "approve", json!({})).await;
    assert_eq!(next.body["step"], json!("gm"));
    assert_eq!(
        team.inbox("rep2").await,
        Vec::<i64>::new(),
        "the other pending task is closed"
    );
    // Reject back to the submitter: on_reject moves the stage back, the submitter hears.
    let rejected = team
        .act("gm1", approval, "reject", json!({"comment": "折扣太大"}))
        .await;
    assert_eq!(rejected.body["status"], json!("rejected"));
    let record = team.server.get(&path).await.body;
    assert_eq!(record["stage"], json!("contact"));
    assert_eq!(record["approved"], Value::Null);
    assert!(
        team.notifications("rep1")
            .await
            .contains(&"approval_result".to_string())
    );
    // Resubmit, then withdraw (only the submitter may).
    let second = submit().await;
    assert_eq!(second.status, 200);
    let second = second.body["id"].as_i64().unwrap();
    assert_ne!(second, approval);
    assert_eq!(
        team.act("boss", second, "withdraw", json!({})).await.status,
        403
    );
    let withdrawn = team
        .act("rep1", second, "withdraw", json!({"comment": "改价后再提"}))
        .await;
    assert_eq!(withdrawn.body["status"], json!("withdrawn"));
    assert_eq!(team.inbox("boss").await, Vec::<i64>::new());
    assert_eq!(
        team.act("boss", second, "approve", json!({})).await.status,
        409
    );
    assert_eq!(
        team.call("rep1", Method::PATCH, &path, Some(json!({"discount": 8})))
            .await
            .status,
        200
    );
    let history = team.server.get(&format!("{path}/history")).await.body;
    assert_eq!(history["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(
        team.act("boss", 999_999, "approve", json!({})).await.status,
        404
    );
    assert_eq!(
        team.act("boss", second, "frobnicate", json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn entering_a_stage_starts_its_flow_and_a_restart_loses_nothing() {
    let team = Team::start().await;
    let deal = team
        .deal(
            "rep1",
            json!({"name": "签单", "phone": "0755-8888", "contract_no": "HT-001", "reviewer": team.ids["gm1"], "discount": 12, "amount": "300000"}),
        )
        .await;
    let path = format!("/api/data/deal/{deal}");
    let signed = team
        .call(
            "rep1",
            Method::POST,
            &format!("{path}/stage"),
            Some(json!({"to": "signed"})),
        )
        .await;
    assert_eq!(signed.status, 200, "{:?}", signed.body);
    let review = signed.body["approval"]
        .as_i64()
        .expect("the stage started its flow");
    assert_eq!(team.inbox("gm1").await, vec![review]);
    team.act("gm1", review, "approve", json!({})).await;
    assert_eq!(team.server.get(&path).await.body["approved"], json!(true));

    // A second record goes through the three-step flow across a restart.
    let deal = team
        .deal(
            "rep1",
            json!({"name": "跨重启", "amount": "300000", "discount": 30}),
        )
        .await;
    let approval = team
        .call(
            "rep1",
            Method::POST,
            &format!("/api/data/deal/{deal}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    team.act("boss", approval, "approve", json!({})).await;
    let restarted = team.server.restart().await;
    let gm_token = &team.tokens["gm1"];
    let view = restarted
        .call(
            gm_token,
            Method::GET,
            &format!("/api/approvals/{approval}"),
            None,
        )
        .await;
    assert_eq!(view.status, 200, "{:?}", view.body);
    assert_eq!(view.body["step"], json!("gm"));
    let approved = restarted
        .call(
            gm_token,
            Method::POST,
            &format!("/api/approvals/{approval}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(approved.body["step"], json!("finance"));
    let locked = restarted
        .call(
            &team.tokens["rep1"],
            Method::PATCH,
            &format!("/api/data/deal/{deal}"),
            Some(json!({"amount": "1"})),
        )
        .await;
    assert_eq!(locked.status, 409, "the lock survives the restart");
    // Someone neither taking part nor able to read the record does not see it.
    let outsider = restarted
        .call(
            &team.tokens["rep2"],
            Method::GET,
            &format!("/api/approvals/{approval}"),
            None,
        )
        .await;
    assert_eq!(outsider.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_without_approvers_refuses_the_submit() {
    let team = Team::start().await;
    // boss is disabled: nobody above 华东组 manages, so the first step has no approver.
    team.server
        .patch(
            &format!("/api/users/{}", team.ids["boss"]),
            json!({"active": false}),
            None,
        )
        .await;
    let deal = team
        .deal(
            "rep1",
            json!({"name": "无人审批", "amount": "900", "discount": 30}),
        )
        .await;
    let path = format!("/api/data/deal/{deal}");
    let submitted = team
        .call(
            "rep1",
            Method::POST,
            &format!("{path}/submit"),
            Some(json!({"flow": "discount"})),
        )
        .await;
    assert_eq!(submitted.status, 422, "{:?}", submitted.body);
    let message = submitted.body["error"]["details"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("mgr") && message.contains("manager"),
        "{message}"
    );
    assert_eq!(
        team.call("rep1", Method::PATCH, &path, Some(json!({"discount": 1})))
            .await
            .status,
        200,
        "nothing was locked"
    );
    let history = team.server.get(&format!("{path}/history")).await.body;
    assert_eq!(history["approvals"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_matching_record_starts_its_flow() {
    let team = Team::start().await;
    let huge = team
        .deal("rep1", json!({"name": "超大单", "amount": "2000000"}))
        .await;
    let small = team
        .deal("rep1", json!({"name": "小单", "amount": "10"}))
        .await;
    let history = team
        .server
        .get(&format!("/api/data/deal/{huge}/history"))
        .await
        .body;
    assert_eq!(team.inbox("gm1").await.len(), 1);
    assert_eq!(history["approvals"][0]["flow"], json!("huge"));
    assert_eq!(
        history["approvals"][0]["submitter"],
        json!(team.ids["rep1"])
    );
    let locked = team
        .call(
            "rep1",
            Method::PATCH,
            &format!("/api/data/deal/{huge}"),
            Some(json!({"amount": "1"})),
        )
        .await;
    assert_eq!(locked.status, 409);
    let free = team
        .call(
            "rep1",
            Method::PATCH,
            &format!("/api/data/deal/{small}"),
            Some(json!({"amount": "2"})),
        )
        .await;
    assert_eq!(free.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sharing_a_record_notifies_each_recipient_once_and_joins_the_timeline() {
    let team = Team::start().await;
    let deal = team.deal("rep1", json!({"name": "分享的商机"})).await;
    let path = format!("/api/data/deal/{deal}/share");
    let shared = team
        .call(
            "rep1",
            Method::POST,
            &path,
            Some(
                json!({"to": [team.ids["boss"]], "cc": [team.ids["gm1"], team.ids["rep1"]],
                        "roles": ["finance", "gm"], "note": "请关注这个客户"}),
            ),
        )
        .await;
    assert_eq!(shared.status, 200, "{:?}", shared.body);
    assert_eq!(team.notifications("boss").await, vec!["share_to"]);
    assert_eq!(
        team.notifications("gm1").await,
        vec!["share_cc"],
        "once, though named twice"
    );
    assert_eq!(team.notifications("fin2").await, vec!["share_cc"]);
    assert!(
        team.notifications("rep1").await.is_empty(),
        "not the sharer"
    );
    let history = team
        .server
        .get(&format!("/api/data/deal/{deal}/history"))
        .await
        .body;
    assert_eq!(history["shares"][0]["note"], json!("请关注这个客户"));
    assert_eq!(history["shares"][0]["shared_by"], json!(team.ids["rep1"]));
    for (body, field) in [
        (json!({"note": "x"}), "to"),
        (json!({"to": [team.ids["boss"]], "note": "  "}), "note"),
        (json!({"roles": ["ceo"], "note": "x"}), "roles"),
        (json!({"cc": [999_999], "note": "x"}), "cc"),
    ] {
        let reply = team
            .call("rep1", Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(fields(&reply), vec![field], "{body}");
    }
    let no_note = team
        .call(
            "rep1",
            Method::POST,
            &path,
            Some(json!({"to": [team.ids["boss"]]})),
        )
        .await;
    assert_eq!(no_note.status, 400);
    assert!(
        no_note.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("note")
    );
    let outsider = team
        .call(
            "rep2",
            Method::POST,
            &path,
            Some(json!({"to": [team.ids["boss"]], "note": "x"})),
        )
        .await;
    assert_eq!(outsider.status, 404, "only what one may read can be shared");
    assert_eq!(team.notifications("boss").await.len(), 1);
}
