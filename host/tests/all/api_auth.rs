//! Who may call what, walked over the route table itself (`api::routes()`), so a new route is
//! covered the day it is added: every route refuses no credential, a wrong one and another
//! role's; the platform's signatures around the five-minute tolerance; and tenancy: for every
//! producer route, producer B can neither read nor change producer A's objects.

use funnel_host::api::{self, Auth, auth};
use serde_json::{Value, json};

use crate::api_server::{ADMIN, PLATFORM, SECRET, Server, TapEvent, event, start};
use crate::db::{Db, TestDb, on_both};
use crate::harness::T0;

/// A concrete path for a route's pattern (`{id}` and friends filled in).
fn concrete(path: &str) -> String {
    path.replace("{id}", "no-such-lead")
        .replace("{name}", "vip")
        .replace("{email}", "ana@example.com")
        .replace("{token}", &"0".repeat(32))
}

fn method(route: &api::Route) -> reqwest::Method {
    reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).expect("an HTTP method")
}

on_both!(every_route_refuses_a_missing_wrong_or_other_roles_credential);
async fn every_route_refuses_a_missing_wrong_or_other_roles_credential(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let credential = |role: Auth| match role {
        Auth::Admin => ADMIN.to_string(),
        Auth::Producer => key.clone(),
        Auth::Platform => PLATFORM.to_string(),
        Auth::Public => unreachable!("public routes take no credential"),
    };
    let roles = [Auth::Admin, Auth::Producer, Auth::Platform];
    let routes = api::routes();
    assert!(routes.iter().filter(|r| r.auth != Auth::Public).count() >= 14, "the table lists the private routes");
    for route in &routes {
        let (method, path) = (method(route), concrete(route.path));
        let what = format!("{db:?}: {} {}", route.method, route.path);
        if route.auth == Auth::Public {
            let (status, _) = s.send(method, &path, None, None).await;
            assert!(status != 401 && status < 500, "{what} is public: {status}");
            continue;
        }
        let right = credential(route.auth);
        let mut refused: Vec<(Option<String>, String)> = vec![
            (None, "no credential".into()),
            (Some(format!("{right}x")), "a wrong credential".into()),
            (Some(String::new()), "an empty bearer".into()),
        ];
        for other in roles.iter().filter(|r| **r != route.auth) {
            refused.push((Some(credential(*other)), format!("the {other:?} credential")));
        }
        for (token, why) in refused {
            let (status, problem) = s.send(method.clone(), &path, token.as_deref(), Some(json!({}))).await;
            assert_eq!(status, 401, "{what} refuses {why}: {problem}");
            assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: says why: {problem}");
        }
        let (status, body) = s.send(method, &path, Some(&right), Some(json!({}))).await;
        assert_ne!(status, 401, "{what} accepts its own role's credential: {body}");
    }
    // The refused requests changed nothing: the only producer is the one made above.
    let (_, leads) = s.send(reqwest::Method::GET, "/v1/leads", Some(&key), None).await;
    assert_eq!(leads["leads"], json!([]), "{db:?}");
}

/// Serve `routes` alone, built the way `api::router` builds the real table.
async fn serve_routes(s: &Server, routes: Vec<api::Route>) -> String {
    let router = api::router_from(routes, s.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test]
async fn a_route_is_guarded_by_its_table_entry_even_when_its_handler_checks_nothing() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (producer, key) = s.producer().await;
    let open = || axum::routing::post(|| async { "open" });
    let routes = vec![
        api::Route::new("post", "/admin", "checks nothing", Auth::Admin, open()),
        api::Route::new("post", "/platform", "checks nothing", Auth::Platform, open()),
        api::Route::new("post", "/producer", "checks nothing", Auth::Producer, open()),
        api::Route::new(
            "post",
            "/whoami",
            "names its producer",
            Auth::Producer,
            axum::routing::post(|auth::ProducerCaller(id): auth::ProducerCaller| async move { id }),
        ),
        // A handler that needs a producer on a route the table calls public fails closed.
        api::Route::new(
            "post",
            "/misdeclared",
            "needs a producer, declared public",
            Auth::Public,
            axum::routing::post(|auth::ProducerCaller(id): auth::ProducerCaller| async move { id }),
        ),
    ];
    let base = serve_routes(&s, routes).await;
    let post = |path: &str, token: Option<&str>| {
        let req = s.http.post(format!("{base}{path}"));
        let req = match token {
            Some(token) => req.bearer_auth(token),
            None => req,
        };
        async move {
            let resp = req.send().await.expect("send");
            (resp.status().as_u16(), resp.text().await.expect("body"))
        }
    };
    for (path, right) in [("/admin", ADMIN), ("/platform", PLATFORM), ("/producer", key.as_str())] {
        assert_eq!(post(path, None).await.0, 401, "{path} without a credential");
        assert_eq!(post(path, Some("wrong")).await.0, 401, "{path} with a wrong one");
        assert_eq!(post(path, Some(right)).await, (200, "open".to_string()), "{path} with its own");
    }
    assert_eq!(post("/whoami", Some(&key)).await, (200, producer), "the handler gets the key's producer");
    assert_eq!(post("/misdeclared", Some(&key)).await.0, 401, "no table entry, no producer");
}

/// Post `body` to `/v1/events` signed at `t` (Unix seconds) with `secret`.
async fn signed(s: &Server, secret: &str, t: i64, body: &str) -> u16 {
    s.http
        .post(format!("{}/v1/events", s.base))
        .header("Funnel-Signature", auth::sign(secret, t, body.as_bytes()))
        .body(body.to_string())
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

#[tokio::test]
async fn signatures_are_accepted_within_five_minutes_either_way() {
    let (_db, store) = TestDb::with_store(Db::Sqlite).await;
    let s = start(store).await;
    let (producer, _) = s.producer().await;
    let now_s = T0 / 1000;
    let tolerance = auth::SIGNATURE_TOLERANCE_S;
    assert_eq!(tolerance, 300);
    let cases = [
        (0, 202, "now"),
        (-tolerance, 202, "exactly five minutes old"),
        (tolerance, 202, "exactly five minutes ahead"),
        (-tolerance - 1, 401, "a second too old"),
        (tolerance + 1, 401, "a second too far in the future"),
        (86_400, 401, "a day in the future"),
    ];
    for (i, (offset, expected, why)) in cases.into_iter().enumerate() {
        let body = event(&format!("e{i}"), &producer, "ana@example.com").to_string();
        assert_eq!(signed(&s, SECRET, now_s + offset, &body).await, expected, "{why}");
    }
    let body = event("e-wrong", &producer, "ana@example.com").to_string();
    assert_eq!(signed(&s, "wrong secret", now_s, &body).await, 401, "another secret");
    // A signature is for one body: the same header over another body is refused.
    let header = auth::sign(SECRET, now_s, body.as_bytes());
    let other = event("e-other", &producer, "ana@example.com").to_string();
    let resp = s.http.post(format!("{}/v1/events", s.base)).header("Funnel-Signature", header).body(other).send().await;
    assert_eq!(resp.expect("send").status().as_u16(), 401, "a signature does not carry over to another body");
}

/// Producer A's world: an upload, a binding at (p1, q1) with a coupon, and a lead there who
/// is on A's list `vip`. Returns A's key and the lead's id.
async fn producer_a(s: &Server) -> (String, String, String) {
    let (a, ka) = s.producer().await;
    assert_eq!(s.upload(&ka, funnel_host::guests::TEST_GUEST.to_vec()).await.0, 201);
    let coupon = json!({"product_id": "p1", "plan_id": "q1", "code": "A10", "discount_percent": 10});
    assert_eq!(s.send(reqwest::Method::POST, "/v1/coupons", Some(&ka), Some(coupon)).await.0, 201);
    let binding = json!({"product_id": "p1", "plan_id": "q1", "plugin": "test-guest", "config": {"mode": "roundtrip"}});
    let (status, body) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&ka), Some(binding)).await;
    assert_eq!(status, 200, "{body}");
    let (_, accepted) = s.post_event(scoped(event("a1", &a, "ana@example.com"))).await;
    s.settle().await;
    (a, ka, accepted["lead_id"].as_str().expect("lead").to_string())
}

/// The event for product p1, plan q1.
fn scoped(event: Value) -> Value {
    event.tap(&["checkout", "product_id"], json!("p1")).tap(&["checkout", "plan_id"], json!("q1"))
}

/// The coupon the lead's last handled event saw, from the roundtrip guest's log.
async fn coupon_seen(s: &Server, key: &str, lead: &str) -> String {
    let (_, detail) = s.get(&format!("/v1/leads/{lead}"), key).await;
    let logs: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["detail"].as_str()?.split("coupon=").nth(1)?.split(' ').next())
        .collect();
    logs.last().expect("a coupon log line").to_string()
}

on_both!(producers_neither_read_nor_change_each_others_objects);
async fn producers_neither_read_nor_change_each_others_objects(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (a, ka, lead_a) = producer_a(&s).await;
    let (b, kb) = s.producer().await;
    // The same checkout id and email at producer B: another lead, of B's.
    let (_, accepted) = s.post_event(scoped(event("b1", &b, "ana@example.com"))).await;
    let lead_b = accepted["lead_id"].as_str().expect("lead").to_string();
    assert_ne!(lead_a, lead_b, "{db:?}");
    s.settle().await;
    assert_eq!(coupon_seen(&s, &ka, &lead_a).await, r#"Some("A10:10")"#, "{db:?}");

    let (status, _) = s.get(&format!("/v1/leads/{lead_a}"), &kb).await;
    assert_eq!(status, 404, "{db:?}: B cannot read A's lead by id");
    let (_, leads) = s.get("/v1/leads", &kb).await;
    let ids: Vec<&str> = leads["leads"].as_array().expect("leads").iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, [lead_b.as_str()], "{db:?}: B lists only its own lead");
    let (_, lists) = s.get("/v1/lists", &kb).await;
    assert_eq!(lists, json!({"lists": []}), "{db:?}: A's list is not B's");
    let (_, members) = s.get("/v1/lists/vip/members", &kb).await;
    assert_eq!(members["members"], json!([]), "{db:?}: nor its members");
    let (_, stats) = s.get("/v1/stats", &kb).await;
    assert_eq!((stats["leads"].as_i64(), &stats["by_tag"]), (Some(1), &json!([])), "{db:?}: B's stats are B's");
    let (_, bindings) = s.get("/v1/bindings", &kb).await;
    assert_eq!(bindings["bindings"], json!([]), "{db:?}: nor A's bindings");
    let (_, plugins) = s.get("/v1/plugins", &kb).await;
    assert_eq!(plugins["plugins"], json!([]), "{db:?}: nor A's uploads");

    // B binds A's upload by name: unknown to B.
    let stolen = json!({"plugin": "test-guest", "config": {"mode": "roundtrip"}});
    let (status, problem) = s.send(reqwest::Method::PUT, "/v1/bindings", Some(&kb), Some(stolen)).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("plugin")), "{db:?}: {problem}");
    // B's coupon and binding for the same scope are B's own; A's stay as they were.
    let coupon = json!({"product_id": "p1", "plan_id": "q1", "code": "B50", "discount_percent": 50});
    assert_eq!(s.send(reqwest::Method::POST, "/v1/coupons", Some(&kb), Some(coupon)).await.0, 201, "{db:?}");
    let binding = json!({"product_id": "p1", "plan_id": "q1", "plugin": "four-emails",
                         "config": {"emails": [{"after": "20m", "subject": "B", "html": "<p>{{checkout_url}}</p>"}]}});
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&kb), Some(binding)).await.0, 200, "{db:?}");
    let (_, a_bindings) = s.send(reqwest::Method::GET, "/v1/bindings", Some(&ka), None).await;
    let a_bindings = a_bindings["bindings"].as_array().expect("bindings").clone();
    assert_eq!(a_bindings.len(), 1, "{db:?}: {a_bindings:?}");
    assert_eq!(
        (&a_bindings[0]["plugin"], &a_bindings[0]["config"]),
        (&json!("test-guest"), &json!({"mode": "roundtrip"}))
    );
    // B erases the shared address: B's person goes, A's stays.
    let (status, _) = s.send(reqwest::Method::DELETE, "/v1/contacts/ana@example.com", Some(&kb), None).await;
    assert_eq!(status, 204, "{db:?}");
    let (status, _) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead_a}"), Some(&ka), None).await;
    assert_eq!(status, 200, "{db:?}: B's erasure left A's lead");
    let (_, members) = s.send(reqwest::Method::GET, "/v1/lists/vip/members", Some(&ka), None).await;
    assert_eq!(members["members"][0]["lead_id"], json!(lead_a), "{db:?}: and A's list");

    // A's lead goes on with A's plugin, A's coupon, and is not suppressed by B's erasure.
    s.post_event(scoped(event("a2", &a, "ana@example.com"))).await;
    s.settle().await;
    assert_eq!(coupon_seen(&s, &ka, &lead_a).await, r#"Some("A10:10")"#, "{db:?}: A's coupon, not B's");
    let (_, detail) = s.send(reqwest::Method::GET, &format!("/v1/leads/{lead_a}"), Some(&ka), None).await;
    let sent = detail["messages"].as_array().expect("messages").iter().filter(|m| m["channel"] == "email").count();
    assert_eq!(sent, 2, "{db:?}: A still emails its lead: {detail}");
}

on_both!(coupons_are_checked_and_reach_only_their_product_and_plan);
async fn coupons_are_checked_and_reach_only_their_product_and_plan(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (a, ka, lead) = producer_a(&s).await;
    let bad = [
        (json!({"product_id": "p1", "plan_id": " ", "code": "X", "discount_percent": 10}), "plan_id"),
        (json!({"product_id": "", "plan_id": "q1", "code": "X", "discount_percent": 10}), "product_id"),
        (json!({"product_id": "p1", "plan_id": "q1", "code": "TWO WORDS", "discount_percent": 10}), "code"),
        (json!({"product_id": "p1", "plan_id": "q1", "code": "X".repeat(65), "discount_percent": 10}), "code"),
        (json!({"product_id": "p1", "plan_id": "q1", "code": "X", "discount_percent": 0}), "discount_percent"),
        (json!({"product_id": "p1", "plan_id": "q1", "code": "X", "discount_percent": 101}), "discount_percent"),
    ];
    for (body, path) in bad {
        let (status, problem) = s.send(reqwest::Method::POST, "/v1/coupons", Some(&ka), Some(body.clone())).await;
        assert_eq!(status, 422, "{db:?}: {body}");
        let paths: Vec<&str> =
            problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["path"].as_str()).collect();
        assert!(paths.contains(&path), "{db:?}: {path} named for {body}: {problem}");
    }
    let (status, problem) = s.send(reqwest::Method::POST, "/v1/coupons", Some(&ka), Some(json!({"code": "X"}))).await;
    assert_eq!(status, 422, "{db:?}: missing fields: {problem}");
    // A refused coupon changed nothing; a new one for the scope replaces the old.
    s.post_event(scoped(event("a2", &a, "ana@example.com"))).await;
    s.settle().await;
    assert_eq!(coupon_seen(&s, &ka, &lead).await, r#"Some("A10:10")"#, "{db:?}");
    let coupon = json!({"product_id": "p1", "plan_id": "q1", "code": "VOLTA-15", "discount_percent": 15});
    let (status, created) = s.send(reqwest::Method::POST, "/v1/coupons", Some(&ka), Some(coupon.clone())).await;
    assert_eq!((status, &created), (201, &coupon), "{db:?}");
    s.post_event(scoped(event("a3", &a, "ana@example.com"))).await;
    s.settle().await;
    assert_eq!(coupon_seen(&s, &ka, &lead).await, r#"Some("VOLTA-15:15")"#, "{db:?}");
    // Another plan of the product gets no coupon, even under a binding of its own.
    let binding = json!({"product_id": "p1", "plan_id": "q2", "plugin": "test-guest", "config": {"mode": "roundtrip"}});
    assert_eq!(s.send(reqwest::Method::PUT, "/v1/bindings", Some(&ka), Some(binding)).await.0, 200);
    let other = event("q2", &a, "bia@example.com")
        .tap_checkout("chk-2")
        .tap(&["checkout", "product_id"], json!("p1"))
        .tap(&["checkout", "plan_id"], json!("q2"));
    let (_, accepted) = s.post_event(other).await;
    s.settle().await;
    let other_lead = accepted["lead_id"].as_str().expect("lead");
    assert_eq!(coupon_seen(&s, &ka, other_lead).await, "None", "{db:?}: the coupon is for q1 only");
}

on_both!(generated_tokens_are_stored_as_hashes_and_shown_once);
/// The admin and platform tokens `serve` generates are printed once and stored only as sha256
/// hashes (like producers' API keys): a copy of the database does not hand out admin access.
/// Tokens stored in plain text by an older release are hashed in place at the next start.
async fn generated_tokens_are_stored_as_hashes_and_shown_once(db: Db) {
    use funnel_host::api::secrets::{GivenSecrets, load_secrets};
    let (test_db, store) = TestDb::with_store(db).await;
    let (secrets, generated) = load_secrets(&store, GivenSecrets::default()).await.expect("secrets");
    let shown: std::collections::HashMap<_, _> = generated.into_iter().collect();
    let admin = shown.get("admin_token").expect("an admin token shown").clone();
    let platform = shown.get("platform_token").expect("a platform token shown").clone();
    assert!(shown.contains_key("platform_secret"), "{shown:?}");
    assert!(secrets.admin_token.matches(&admin) && secrets.platform_token.matches(&platform));
    assert!(!secrets.admin_token.matches("x") && !secrets.admin_token.matches(&platform));
    for token in [&admin, &platform] {
        let stored = test_db.count(&format!("SELECT COUNT(*) FROM settings WHERE value LIKE '%{token}%'")).await;
        assert_eq!(stored, 0, "{db:?}: the token {token} is not in the database in plain text");
    }

    // The next start shows nothing and accepts the same tokens.
    let (again, generated) = load_secrets(&store, GivenSecrets::default()).await.expect("secrets");
    assert!(generated.is_empty(), "{db:?}: shown once: {generated:?}");
    assert!(again.admin_token.matches(&admin) && again.platform_token.matches(&platform));

    // A token an older release stored in plain text keeps working and is hashed in place.
    let (legacy_db, legacy) = TestDb::with_store(db).await;
    legacy_db.execute("INSERT INTO settings (key, value) VALUES ('admin_token', 'legacy-admin-token')").await;
    let (secrets, generated) = load_secrets(&legacy, GivenSecrets::default()).await.expect("secrets");
    assert!(secrets.admin_token.matches("legacy-admin-token"), "{db:?}");
    assert!(!generated.iter().any(|(key, _)| key == "admin_token"), "{db:?}: {generated:?}");
    let plain = legacy_db.count("SELECT COUNT(*) FROM settings WHERE value = 'legacy-admin-token'").await;
    assert_eq!(plain, 0, "{db:?}: the plain copy is gone");
    let (secrets, _) = load_secrets(&legacy, GivenSecrets::default()).await.expect("secrets");
    assert!(secrets.admin_token.matches("legacy-admin-token"), "{db:?}: still accepted after the rewrite");

    // Tokens given in the environment win and are not stored.
    let given = GivenSecrets { admin_token: Some("given".into()), ..GivenSecrets::default() };
    let (secrets, _) = load_secrets(&legacy, given).await.expect("secrets");
    assert!(secrets.admin_token.matches("given") && !secrets.admin_token.matches("legacy-admin-token"));
}
