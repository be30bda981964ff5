//! `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the route table the
//! router is built from and the JSON Schemas of the request and response bodies (derived from the
//! Rust types the handlers parse and answer with).
//!
//! schemars writes each body's named subschemas under its own `$defs`, referenced as
//! `#/$defs/Name`; inside this document such a reference would resolve against the document's
//! root and find nothing (schemathesis skipped those parts of the event bodies), so they are
//! moved to `components/schemas` and the references rewritten to point there.

use axum::Json;

use super::{Auth, Route, routes};

/// The body of every error (`problem.rs`): RFC 9457 fields and the field-level `errors` list.
fn problem_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["type", "title", "status", "detail", "errors"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}}
            }}
        }
    })
}

/// Move `schema`'s `$defs` into `defs` and point its references at `components/schemas`.
fn hoist_defs(
    mut schema: serde_json::Value,
    defs: &mut serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    if let Some(serde_json::Value::Object(own)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, def) in own {
            let def = hoist_defs(def, defs);
            defs.insert(name, def);
        }
    }
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    rewrite_refs(&mut schema);
    schema
}

fn rewrite_refs(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(o) => {
            for (key, v) in o.iter_mut() {
                match v {
                    serde_json::Value::String(r) if key == "$ref" => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            *r = format!("#/components/schemas/{name}");
                        }
                    }
                    _ => rewrite_refs(v),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The route's path parameters (each `{name}` of its path, with the schema its `path_params`
/// gives it) and query parameters (the properties of its `query` schema).
fn parameters(r: &Route) -> Vec<serde_json::Value> {
    let path_schema = r.path_params.map(|schema| schema());
    let mut params: Vec<serde_json::Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = path_schema
                .as_ref()
                .and_then(|s| s["properties"].get(name))
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "string"}));
            serde_json::json!({"name": name, "in": "path", "required": true, "schema": parameter_schema(schema)})
        })
        .collect();
    if let Some(query) = r.query.map(|schema| schema()) {
        let required = |name: &str| query["required"].as_array().is_some_and(|all| all.iter().any(|n| n == name));
        if let Some(properties) = query["properties"].as_object() {
            for (name, schema) in properties {
                let mut param = serde_json::json!({"name": name, "in": "query", "required": required(name),
                                                   "schema": parameter_schema(schema.clone())});
                if let Some(description) = schema.get("description") {
                    param["description"] = description.clone();
                }
                params.push(param);
            }
        }
    }
    params
}

/// A parameter's schema: a parameter is text or absent, never JSON `null`, so the `null` an
/// `Option` field's schema allows is dropped.
fn parameter_schema(mut schema: serde_json::Value) -> serde_json::Value {
    if let Some(types) = schema.get_mut("type").and_then(|t| t.as_array_mut()) {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            schema["type"] = only.clone();
        }
    }
    schema
}

fn security(auth: Auth) -> serde_json::Value {
    match auth {
        Auth::Public => serde_json::json!([]),
        Auth::Admin => serde_json::json!([{"admin_token": []}]),
        Auth::Producer => serde_json::json!([{"producer_key": []}]),
        Auth::Platform => serde_json::json!([{"platform_token": []}, {"funnel_signature": []}]),
    }
}

/// The document.
pub(super) fn build() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    let mut defs = serde_json::Map::new();
    defs.insert("Problem".into(), problem_schema());
    for r in routes() {
        let mut op = serde_json::json!({
            "summary": r.summary,
            "security": security(r.auth),
            "responses": {
                "default": {"description": "Errors are RFC 9457 problem+json with a field-level `errors` list",
                            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            },
        });
        let params = parameters(&r);
        if !params.is_empty() {
            op["parameters"] = serde_json::Value::Array(params);
        }
        if let Some(responses) = r.responses
            && let (Some(all), serde_json::Value::Object(these)) = (op["responses"].as_object_mut(), responses())
        {
            for (status, mut answer) in these {
                if let Some(schema) = answer.pointer_mut("/content/application~1json/schema") {
                    *schema = hoist_defs(schema.take(), &mut defs);
                }
                all.insert(status, answer);
            }
        }
        if let Some(schema) = r.body {
            op["requestBody"] = serde_json::json!({"required": true, "content": {"application/json": {"schema": hoist_defs(schema(), &mut defs)}}});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| serde_json::json!({}));
        entry[r.method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "funnel", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Abandoned-checkout recovery with sandboxed WebAssembly strategies"},
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": {
            "admin_token": {"type": "http", "scheme": "bearer"},
            "producer_key": {"type": "http", "scheme": "bearer"},
            "platform_token": {"type": "http", "scheme": "bearer"},
            "funnel_signature": {"type": "apiKey", "in": "header", "name": "Funnel-Signature",
                                 "description": "t=<unix>,v1=<hex hmac-sha256(secret, t + \".\" + body)>"}
        }},
    })
}

pub(super) async fn document() -> Json<serde_json::Value> {
    Json(build())
}
