//! `funnel plugin push FILE.wasm --server URL --key KEY`: upload a component to a server
//! (`POST /v1/plugins`), after checking it locally the way the server will.

use std::path::PathBuf;

use super::UsageError;

#[derive(clap::Args, Debug)]
pub(super) struct PushArgs {
    /// The component to upload (built for wasm32-wasip2).
    file: PathBuf,
    /// Base URL of the funnel server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "FUNNEL_SERVER")]
    server: String,
    /// Your producer API key.
    #[arg(long, env = "FUNNEL_API_KEY", hide_env_values = true)]
    key: String,
    /// Version to register (default: what the plugin's describe() says).
    #[arg(long)]
    version: Option<String>,
}

pub(super) fn run(args: PushArgs) -> Result<(), UsageError> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| UsageError(format!("cannot read {}: {e}; pass the path of a .wasm file", args.file.display())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let mut url = format!("{}/v1/plugins", args.server.trim_end_matches('/'));
        if let Some(version) = &args.version {
            url.push_str(&format!("?version={version}"));
        }
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&args.key)
            .body(bytes)
            .send()
            .await
            .map_err(|e| UsageError(format!("cannot reach {}: {e}; check --server", args.server)))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        let detail = body["detail"].as_str().unwrap_or("no detail").to_string();
        match status {
            s if s.is_success() => {
                println!("{body}");
                Ok(())
            }
            reqwest::StatusCode::CONFLICT => Err(UsageError(conflict_advice(&detail))),
            _ => Err(UsageError(format!("the server refused the upload ({status}): {detail}"))),
        }
    })
}

/// What to do when the server already has other bytes under this name and version (409): a
/// name and version identify one component, so the new one needs a new version and a binding
/// that names it.
fn conflict_advice(detail: &str) -> String {
    format!(
        "the server already has a different component under this name and version ({detail}): bump the \
         version (in describe(), or pass --version), push again, then re-bind it with PUT /v1/bindings so \
         leads use the new one"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_conflict_says_to_bump_the_version_and_re_bind() {
        let advice = super::conflict_advice("sms-first@0.1.0 exists");
        assert!(advice.contains("bump the version") && advice.contains("re-bind"), "{advice}");
        assert!(advice.contains("sms-first@0.1.0 exists"), "{advice}");
    }
}
