//! The request schemas in `/openapi.json` say what the handlers enforce: for each body and
//! each path and query parameter, the documented limit is read from the document and the
//! handler is shown to accept a value at it and to refuse one just past it, naming the field
//! (the event body's own test is `api::the_event_schema_carries_the_limits_the_handler_enforces`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::api_server::{Server, start};
use crate::db::{Db, TestDb, on_both};

/// A schema, its `$ref` followed into the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("{r} resolves")),
        None => schema,
    }
}

fn body_schema<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    resolve(doc, &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"])
}

/// The schema of a path or query parameter.
fn param<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    let params = doc["paths"][path][method]["parameters"].as_array().unwrap_or_else(|| panic!("{path} has parameters"));
    let found = params.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{path} documents {name}"));
    &found["schema"]
}

async fn document(s: &Server) -> Value {
    let (status, doc) = s.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    doc
}

/// `body` is accepted (2xx); `bad` is refused with 422 naming `field` first.
async fn at_and_past(s: &Server, method: Method, path: &str, key: &str, (field, ok, bad): (&str, Value, Value)) {
    let (status, answer) = s.send(method.clone(), path, Some(key), Some(ok.clone())).await;
    assert!((200..300).contains(&status), "{path} {field} at its limit: {status} {answer} for {ok}");
    let (status, problem) = s.send(method, path, Some(key), Some(bad.clone())).await;
    assert_eq!(status, 422, "{path} {field} past its limit: {problem} for {bad}");
    let named = problem["errors"][0]["path"].as_str().unwrap_or_default();
    assert!(named.starts_with(field), "{path}: {field} named: {problem}");
}

fn with(base: &Value, extra: Value) -> Value {
    let mut body = base.clone();
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

on_both!(the_producer_schema_carries_the_limits_the_handler_enforces);
async fn the_producer_schema_carries_the_limits_the_handler_enforces(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let doc = document(&s).await;
    let name = &body_schema(&doc, "post", "/v1/admin/producers")["properties"]["name"];
    assert_eq!((&name["minLength"], &name["maxLength"]), (&json!(1), &json!(200)), "{name}");
    assert_eq!(name["pattern"], funnel_host::domain::text::NON_BLANK_LINE);
    let admin = crate::api_server::ADMIN;
    for (ok, bad) in
        [("x".repeat(200), "x".repeat(201)), ("Loja".into(), "   ".into()), ("Ana".into(), "A\u{85}na".into())]
    {
        let case = ("name", json!({"name": ok}), json!({"name": bad}));
        at_and_past(&s, Method::POST, "/v1/admin/producers", admin, case).await;
    }
}

on_both!(the_coupon_schema_carries_the_limits_the_handler_enforces);
async fn the_coupon_schema_carries_the_limits_the_handler_enforces(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let doc = document(&s).await;
    let coupon = body_schema(&doc, "post", "/v1/coupons");
    let p = &coupon["properties"];
    assert_eq!((&p["discount_percent"]["minimum"], &p["discount_percent"]["maximum"]), (&json!(1), &json!(100)));
    assert_eq!((&p["product_id"]["minLength"], &p["product_id"]["maxLength"]), (&json!(1), &json!(200)));
    assert_eq!(p["code"]["maxLength"], 64);
    assert_eq!(p["codes"]["maxItems"], json!(funnel_host::store::coupons::MAX_CODES_PER_REQUEST));
    assert_eq!((&p["codes"]["minItems"], &p["codes"]["uniqueItems"]), (&json!(1), &json!(true)));
    assert_eq!(p["codes"]["items"]["pattern"], funnel_host::domain::coupon::POOL_CODE);
    assert_eq!(p["pattern"]["maxLength"], json!(funnel_host::domain::coupon::MAX_PATTERN_CHARS));
    assert_eq!(coupon["oneOf"].as_array().map(Vec::len), Some(3), "exactly one of code, codes, pattern: {coupon}");
    assert_eq!(coupon["additionalProperties"], false);
    let base = json!({"product_id": "p", "plan_id": "q", "discount_percent": 10, "code": "V10"});
    let cases = [
        ("discount_percent", json!({"discount_percent": 100}), json!({"discount_percent": 101})),
        // The example: schema-valid before (any integer), refused by the handler.
        (
            "discount_percent",
            json!({"discount_percent": 1}),
            json!({"discount_percent": 9_223_372_036_854_775_806_i64}),
        ),
        ("product_id", json!({"product_id": "x".repeat(200)}), json!({"product_id": "x".repeat(201)})),
        ("plan_id", json!({"plan_id": "q"}), json!({"plan_id": " "})),
        ("code", json!({"code": "C".repeat(64)}), json!({"code": "C".repeat(65)})),
    ];
    for (field, ok, bad) in cases {
        at_and_past(&s, Method::POST, "/v1/coupons", &key, (field, with(&base, ok), with(&base, bad))).await;
    }
    let base = json!({"product_id": "p2", "plan_id": "q", "discount_percent": 10});
    let cases = [
        // A pattern of 100 characters (25 random ones), and one past it.
        ("pattern", json!({"pattern": "{A1}".repeat(25)}), json!({"pattern": format!("{}X", "{A1}".repeat(25))})),
        ("codes", json!({"codes": ["A1", "B2"]}), json!({"codes": []})),
        ("codes", json!({"codes": ["C".repeat(64)]}), json!({"codes": ["C".repeat(65)]})),
    ];
    for (field, ok, bad) in cases {
        at_and_past(&s, Method::POST, "/v1/coupons", &key, (field, with(&base, ok), with(&base, bad))).await;
    }
}

on_both!(the_settings_schema_carries_the_limits_the_handler_enforces);
async fn the_settings_schema_carries_the_limits_the_handler_enforces(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let doc = document(&s).await;
    let cap = &doc["components"]["schemas"]["CapBody"]["properties"];
    assert_eq!((&cap["count"]["minimum"], &cap["count"]["maximum"]), (&json!(1), &json!(100)), "{cap}");
    assert_eq!(cap["over"]["enum"], json!(["defer", "drop", null]));
    assert!(cap["per"]["pattern"].is_string(), "{cap}");
    let settings = |count: i64, per: &str, over: &str| json!({"max_recovery_messages_per_contact": {"count": count, "per": per, "over": over}});
    let field = "max_recovery_messages_per_contact";
    let cases = [
        (format!("{field}.count"), settings(100, "24h", "defer"), settings(101, "24h", "defer")),
        (format!("{field}.count"), settings(1, "24h", "defer"), settings(0, "24h", "defer")),
        (format!("{field}.over"), settings(3, "24h", "drop"), settings(3, "24h", "ignore")),
        (format!("{field}.per"), settings(3, "1d12h", "drop"), settings(3, "1 day", "drop")),
    ];
    for (field, ok, bad) in cases {
        at_and_past(&s, Method::PUT, "/v1/settings", &key, (&field, ok, bad)).await;
    }
}

on_both!(the_webhook_schema_carries_the_limits_the_handler_enforces);
async fn the_webhook_schema_carries_the_limits_the_handler_enforces(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let doc = document(&s).await;
    let p = &body_schema(&doc, "post", "/v1/webhooks")["properties"];
    assert_eq!(p["url"]["maxLength"], json!(funnel_host::webhooks::target::MAX_URL_BYTES));
    assert_eq!(p["events"]["minItems"], 1);
    // The test server allows private targets: a loopback URL of exactly 2048 bytes, and one past.
    let url = |len: usize| {
        let start = "http://127.0.0.1:9/";
        format!("{start}{}", "a".repeat(len - start.len()))
    };
    let body = |url: String| json!({"url": url, "events": ["lead.recovered"]});
    at_and_past(&s, Method::POST, "/v1/webhooks", &key, ("url", body(url(2048)), body(url(2049)))).await;
    let cases = ("url", body("https://127.0.0.1/hook".into()), body("https://user:pw@127.0.0.1/hook".into()));
    at_and_past(&s, Method::POST, "/v1/webhooks", &key, cases).await;
}

on_both!(parameters_carry_the_limits_the_handlers_enforce);
async fn parameters_carry_the_limits_the_handlers_enforce(db: Db) {
    let (_db, store) = TestDb::with_store(db).await;
    let s = start(store).await;
    let (_, key) = s.producer().await;
    let doc = document(&s).await;
    let limit = param(&doc, "get", "/v1/leads", "limit");
    assert_eq!((&limit["type"], &limit["minimum"], &limit["maximum"]), (&json!("integer"), &json!(1), &json!(500)));
    assert_eq!(s.get("/v1/leads?limit=500", &key).await.0, 200);
    for (query, field) in [("limit=501", "limit"), ("limit=0", "limit"), ("limit=abc", "query"), ("cursor=x", "cursor")]
    {
        let (status, problem) = s.get(&format!("/v1/leads?{query}"), &key).await;
        assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some(field)), "{query}: {problem}");
    }
    let email = param(&doc, "delete", "/v1/contacts/{email}", "email");
    assert_eq!((&email["format"], &email["maxLength"]), (&json!("email"), &json!(254)));
    assert_eq!(s.send(Method::DELETE, "/v1/contacts/Ana@Example.com", Some(&key), None).await.0, 204);
    // The example: `0` was schema-valid (any string); it is not an email address.
    let (status, problem) = s.send(Method::DELETE, "/v1/contacts/0", Some(&key), None).await;
    assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some("email")), "{problem}");
    let (from, to) = (param(&doc, "get", "/v1/stats", "from"), param(&doc, "get", "/v1/stats", "to"));
    assert_eq!((&from["format"], &to["format"]), (&json!("date"), &json!("date")));
    let name = param(&doc, "post", "/v1/plugins", "name");
    assert_eq!(name["pattern"], funnel_host::runtime::plugin::NAME_PATTERN);
    assert_eq!(name["not"]["enum"], json!(["four-emails", "flow"]));
    let upload = |query: &'static str| {
        let req = s.request(Method::POST, &format!("/v1/plugins?{query}"), Some(&key));
        async move {
            crate::api_server::answer(req.body(funnel_host::guests::TEST_GUEST.to_vec()).send().await.expect("upload"))
                .await
        }
    };
    for (query, field) in [("name=Test%20Guest&version=0.1.0", "name"), ("name=test-guest&version=0.1%200", "version")]
    {
        let (status, problem) = upload(query).await;
        assert_eq!((status, problem["errors"][0]["path"].as_str()), (422, Some(field)), "{query}: {problem}");
    }
    let (status, _) = upload("name=test-guest&version=0.1.0").await;
    assert!(matches!(status, 201 | 202), "{status}");
    for (path, name) in [("/v1/leads/{id}", "id"), ("/r/{token}", "token"), ("/v1/webhooks/{id}", "id")] {
        let method = if path.starts_with("/v1/webhooks") { "delete" } else { "get" };
        assert!(param(&doc, method, path, name)["pattern"].is_string(), "{path}");
    }
    let limit = param(&doc, "get", "/v1/webhooks/{id}/deliveries", "limit");
    assert_eq!(limit["maximum"], 100);
}
