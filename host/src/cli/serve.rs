//! `funnel serve`: the HTTP API plus the engine (dispatcher, durable timers, delivery) on the
//! real clock. With no settings it uses `./funnel.db`, writes messages under `./outbox/`,
//! listens on 127.0.0.1:8080, and generates its admin token, platform token and platform
//! secret on first start (stored in the database, printed once), so a first run is usable and
//! never open to the world.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::UsageError;
use crate::api::secrets::{GivenSecrets, load_secrets};
use crate::api::{self, AppState};
use crate::clock::{Clock, SystemClock};
use crate::console;
use crate::delivery::file::FileTransport;
use crate::delivery::sms::{SmsFormat, SmsGateway};
use crate::delivery::smtp::SmtpTransport;
use crate::delivery::{Deadlines, Transport};
use crate::pipeline::loops::Loops;
use crate::pipeline::{Pipeline, PipelineParts};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::periodic::{Periodic, PeriodicJobs};
use crate::store::Database;
use crate::webhooks::{SenderSettings, TargetPolicy};

#[derive(clap::Args, Debug)]
pub(super) struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "FUNNEL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Database: sqlite:PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "FUNNEL_DATABASE_URL", default_value = "sqlite:./funnel.db")]
    database_url: String,
    /// Directory where messages are written as files (used while no SMTP/SMS gateway is set).
    #[arg(long, env = "FUNNEL_OUTBOX_DIR", default_value = "./outbox")]
    outbox_dir: PathBuf,
    /// Base URL of tracked links and unsubscribe links (default: http://LISTEN).
    #[arg(long, env = "FUNNEL_PUBLIC_URL")]
    public_url: Option<String>,
    /// SMTP server for emails: smtp://[user:pass@]host[:port][?tls=required|opportunistic] or smtps://…;
    /// when unset, emails are written as .eml files under the outbox directory.
    #[arg(long, env = "FUNNEL_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// HTTP SMS gateway; when unset, SMS are written as .sms.json files under the outbox directory.
    #[arg(long, env = "FUNNEL_SMS_URL", hide_env_values = true)]
    sms_url: Option<String>,
    /// Request shape of the SMS gateway: json ({to, body, reference}) or twilio (form To, From, Body).
    #[arg(long, env = "FUNNEL_SMS_FORMAT", value_enum, default_value = "json")]
    sms_format: SmsFormat,
    /// Sender of SMS (for gateways that need one).
    #[arg(long, env = "FUNNEL_SMS_FROM", default_value = "funnel")]
    sms_from: String,
    /// From address of emails.
    #[arg(long, env = "FUNNEL_FROM", default_value = "funnel <no-reply@localhost>")]
    from: String,
    /// HMAC key the platform signs events with (Funnel-Signature); generated when unset.
    #[arg(long, env = "FUNNEL_PLATFORM_SECRET", hide_env_values = true)]
    platform_secret: Option<String>,
    /// Bearer token the platform may send instead of signing; generated when unset.
    #[arg(long, env = "FUNNEL_PLATFORM_TOKEN", hide_env_values = true)]
    platform_token: Option<String>,
    /// Token for admin routes (creating producers); generated when unset.
    #[arg(long, env = "FUNNEL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Most messages sent per minute by this process, all producers together.
    #[arg(long, env = "FUNNEL_MAX_SENDS_PER_MINUTE", default_value_t = 6000)]
    max_sends_per_minute: u32,
    /// Most messages sent per minute for one producer.
    #[arg(long, env = "FUNNEL_MAX_PRODUCER_SENDS_PER_MINUTE", default_value_t = 600)]
    max_producer_sends_per_minute: u32,
    /// Handled events older than this many days are purged.
    #[arg(long, env = "FUNNEL_RETENTION_DAYS", default_value_t = 90)]
    retention_days: u32,
    /// When the retention purge runs: a cron expression with seconds (UTC).
    #[arg(long, env = "FUNNEL_RETENTION_SCHEDULE", default_value = "0 30 3 * * *")]
    retention_schedule: String,
    /// When the stats roll-up (daily counts for `GET /v1/stats?from=&to=`) recomputes
    /// yesterday and today: a cron expression with seconds (UTC).
    #[arg(long, env = "FUNNEL_STATS_ROLLUP_SCHEDULE", default_value = "0 * * * * *")]
    stats_rollup_schedule: String,
    /// Seconds a send may take to connect to the SMTP server or SMS gateway.
    #[arg(long, env = "FUNNEL_DELIVERY_CONNECT_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    delivery_connect_timeout_secs: u64,
    /// Seconds each later network step of a send may take (the SMTP greeting, each command,
    /// the message's DATA; an SMS gateway's answer). A send past it fails and is retried
    /// with the usual backoff.
    #[arg(long, env = "FUNNEL_DELIVERY_STEP_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    delivery_step_timeout_secs: u64,
    /// Messages sent at once by this process (each with the deadlines above; one lead's
    /// messages still go one after the other). The send rate caps apply whatever this is.
    #[arg(long, env = "FUNNEL_DELIVERY_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    delivery_concurrency: u16,
    /// Where compiled plugins are cached between restarts. Entries are signed with a key kept
    /// beside the folder (`<dir>.key`); an unsigned or tampered entry is recompiled, never run.
    #[arg(long, env = "FUNNEL_CACHE_DIR", default_value = "./.funnel-cache")]
    cache_dir: PathBuf,
    /// Uploads read and checked at once; one more is told to retry (503 with Retry-After).
    #[arg(long, env = "FUNNEL_MAX_CONCURRENT_UPLOADS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrent_uploads: u16,
    /// Seconds an upload's whole body may take to arrive; a slower one is cut (408).
    #[arg(long, env = "FUNNEL_UPLOAD_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    upload_timeout_secs: u64,
    /// Compiled plugins kept in memory; the least recently used beyond this are loaded again
    /// from the compile cache when next needed.
    #[arg(long, env = "FUNNEL_MAX_LOADED_PLUGINS", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_loaded_plugins: u32,
    /// Components one producer may keep stored; past it an upload is refused (409) until one is
    /// deleted.
    #[arg(long, env = "FUNNEL_MAX_PLUGINS_PER_PRODUCER", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_plugins_per_producer: u32,
    /// Milliseconds an upload's request waits for its check (compile, describe()); past it the
    /// component is stored as `compiling`, answered 202 and checked in the background
    /// (default 1000, 10000 in a debug build; 0: always in the background).
    #[arg(long, env = "FUNNEL_UPLOAD_CHECK_BUDGET_MS", value_parser = clap::value_parser!(u64).range(0..=600_000))]
    upload_check_budget_ms: Option<u64>,
    /// Let webhooks point at loopback, private (RFC 1918, fc00::/7), link-local and other
    /// non-public addresses. Off by default: a producer's webhook could otherwise reach
    /// services inside the network funnel runs in. For tests and single-tenant installs.
    /// The variable takes 1/0, true/false, yes/no, on/off.
    #[arg(long, env = "FUNNEL_WEBHOOK_ALLOW_PRIVATE", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    webhook_allow_private: bool,
}

pub(super) fn run(args: ServeArgs) -> Result<(), UsageError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| UsageError(format!("cannot start: {e}")))?;
    let result = runtime.block_on(serve(args));
    // Blocking threads still running (a plugin call at the deadline) are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn serve(args: ServeArgs) -> Result<(), UsageError> {
    let store = Database::connect(&args.database_url)
        .await
        .map_err(|e| UsageError(format!("cannot open the database {}: {e}", args.database_url)))?;
    let given = GivenSecrets {
        admin_token: args.admin_token,
        platform_token: args.platform_token,
        platform_secret: args.platform_secret,
    };
    let (secrets, generated) = load_secrets(&store, given).await.map_err(|e| UsageError(e.to_string()))?;
    for (key, value) in &generated {
        println!(
            "generated {key}: {value}   (shown once: keep it; set FUNNEL_{} to choose your own)",
            key.to_uppercase()
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| {
        UsageError(format!("cannot listen on {}: {e}; pick another with --listen or FUNNEL_LISTEN", args.listen))
    })?;
    let local = listener.local_addr().map_err(|e| UsageError(e.to_string()))?;
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{local}"));
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            cache_dir: Some(args.cache_dir),
            max_concurrent_uploads: usize::from(args.max_concurrent_uploads),
            upload_deadline: Duration::from_secs(args.upload_timeout_secs),
            max_loaded_plugins: args.max_loaded_plugins as usize,
            max_plugins_per_producer: args.max_plugins_per_producer as usize,
            upload_check_budget: args
                .upload_check_budget_ms
                .map_or(RuntimeConfig::default().upload_check_budget, Duration::from_millis),
            ..RuntimeConfig::default()
        })
        .map_err(|e| UsageError(e.to_string()))?,
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let files =
        Arc::new(FileTransport::new(args.outbox_dir.clone(), &args.from, public_url.clone()).map_err(UsageError)?);
    let deadlines = Deadlines {
        connect: Duration::from_secs(args.delivery_connect_timeout_secs),
        step: Duration::from_secs(args.delivery_step_timeout_secs),
    };
    let email: Arc<dyn Transport> = match &args.smtp_url {
        Some(url) => Arc::new(
            SmtpTransport::new(url, &args.from, public_url.clone()).map_err(UsageError)?.with_deadlines(deadlines),
        ),
        None => files.clone(),
    };
    let sms: Arc<dyn Transport> = match &args.sms_url {
        Some(url) => Arc::new(
            SmsGateway::new(url, args.sms_format, &args.sms_from).map_err(UsageError)?.with_deadlines(deadlines),
        ),
        None => files,
    };
    let console_public_url = public_url.clone();
    let webhook_targets = TargetPolicy { allow_private: args.webhook_allow_private };
    let engine = Arc::new(
        Pipeline::new(PipelineParts {
            store: store.clone(),
            runtime,
            clock: clock.clone(),
            email,
            sms,
            public_url,
            rate_caps: (Some(args.max_sends_per_minute), Some(args.max_producer_sends_per_minute)),
        })
        .with_webhooks(webhook_targets, SenderSettings::default()),
    );
    engine.deliverer.set_concurrency(usize::from(args.delivery_concurrency));
    // The dispatcher's own notification: a drain under way with a free slot hears of new work.
    let work = engine.dispatcher.new_work();
    let state = AppState {
        store,
        plugins: engine.plugins.clone(),
        clock,
        secrets: Arc::new(secrets),
        work: work.clone(),
        webhook_targets,
    };
    let jobs = PeriodicJobs {
        retention: Periodic::parse(&args.retention_schedule).map_err(UsageError)?,
        retention_days: args.retention_days,
        stats_rollup: Periodic::parse(&args.stats_rollup_schedule).map_err(UsageError)?,
    };
    // Uploads whose background check a stopped process left unfinished are checked again.
    if let Err(e) = crate::api::plugins::resume_compiling(state.clone()).await {
        tracing::warn!(error = %e, "could not look for uploads left compiling");
    }
    // Compile what the bindings use now, in the background: the first events need not wait.
    {
        let (plugins, store) = (engine.plugins.clone(), engine.store.clone());
        tokio::spawn(async move {
            let warmed = plugins.warm(&store).await;
            tracing::info!(plugins = warmed, "bound plugins loaded");
        });
    }
    let loops = Loops::start(engine, work, jobs);
    println!("funnel listening on http://{local} (messages go to {})", args.outbox_dir.display());
    println!("console: http://{local}/console/ (sign in with a producer's API key)");
    let console = console::router(console::ConsoleState::new(state.clone(), &console_public_url));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let mut server = tokio::spawn(
        axum::serve(listener, api::router(state).merge(console))
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    tokio::select! {
        ended = &mut server => {
            return Err(UsageError(match ended {
                Ok(Ok(())) => "server stopped".to_string(),
                Ok(Err(e)) => format!("server stopped: {e}"),
                Err(e) => format!("server stopped: {e}"),
            }));
        }
        () = stop_signal() => {}
    }
    // SIGTERM or Ctrl-C: stop accepting requests and claiming work, finish or give back what
    // is in flight, and exit within 10 s (leaving what is still running to its lease).
    println!("stopping: finishing the work in flight (at most {} s)", SHUTDOWN_GRACE.as_secs());
    let _ = stop_tx.send(true);
    let clean = loops.shutdown(SHUTDOWN_GRACE).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    if !clean {
        tracing::warn!("some work was still running at the deadline; it is left to its lease");
    }
    println!("stopped");
    Ok(())
}

/// How long shutdown waits for the engine's work in flight (the process exits within 10 s of
/// SIGTERM, what orchestrators wait before SIGKILL).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
