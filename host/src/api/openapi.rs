//! `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the route table the
//! router is built from and the JSON Schemas of the request bodies (derived from the Rust types).

use axum::Json;

use super::{Auth, routes};

fn security(auth: Auth) -> serde_json::Value {
    match auth {
        Auth::Public => serde_json::json!([]),
        Auth::Admin => serde_json::json!([{"admin_token": []}]),
        Auth::Producer => serde_json::json!([{"producer_key": []}]),
        Auth::Platform => serde_json::json!([{"platform_token": []}, {"funnel_signature": []}]),
    }
}

/// The document.
pub fn build() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for r in routes() {
        let mut op = serde_json::json!({
            "summary": r.summary,
            "security": security(r.auth),
            "responses": {
                "default": {"description": "Errors are RFC 9457 problem+json with a field-level `errors` list",
                            "content": {"application/problem+json": {}}}
            },
        });
        let params: Vec<serde_json::Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = serde_json::Value::Array(params);
        }
        if let Some(schema) = r.body {
            op["requestBody"] =
                serde_json::json!({"required": true, "content": {"application/json": {"schema": schema()}}});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| serde_json::json!({}));
        entry[r.method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "funnel", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Abandoned-checkout recovery with sandboxed WebAssembly strategies"},
        "paths": paths,
        "components": {"securitySchemes": {
            "admin_token": {"type": "http", "scheme": "bearer"},
            "producer_key": {"type": "http", "scheme": "bearer"},
            "platform_token": {"type": "http", "scheme": "bearer"},
            "funnel_signature": {"type": "apiKey", "in": "header", "name": "Funnel-Signature",
                                 "description": "t=<unix>,v1=<hex hmac-sha256(secret, t + \".\" + body)>"}
        }},
    })
}

pub async fn document() -> Json<serde_json::Value> {
    Json(build())
}
