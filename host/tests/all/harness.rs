//! An engine on a virtual clock over a real database, for tests that drive events, timers and
//! delivery by hand.

use std::sync::Arc;

use funnel_host::clock::{Clock, VirtualClock};
use funnel_host::delivery::{Discard, Transport};
use funnel_host::domain::TimelineKind;
use funnel_host::domain::{Checkout, EmailAddress, PlatformEvent, PlatformEventType, Price};
use funnel_host::guests;
use funnel_host::pipeline::{Pipeline, PipelineParts};
use funnel_host::runtime::Runtime;
use funnel_host::store::Database;
use funnel_host::store::ingest::IngestOutcome;
use funnel_host::store::snapshots::MessageSnapshot;
use funnel_host::store::timeline::TimelineEntry;

pub(crate) const T0: i64 = 1_767_225_600_000;

pub(crate) struct Harness {
    pub engine: Pipeline,
    pub clock: Arc<VirtualClock>,
    pub producer: String,
}

impl Harness {
    /// An engine over `store`, its clock at `now`, with a fresh producer.
    pub(crate) async fn new(store: Database, now: i64) -> Harness {
        let mut harness = Harness::attach(store, now).await;
        harness.producer = harness.engine.store.create_producer("test producer", now).await.expect("producer").id;
        harness
    }

    /// A fresh database of `db`'s kind and an engine on it with the test guest bound
    /// producer-wide in `mode`. Keep the first value alive: dropping it deletes the database.
    pub(crate) async fn with_guest(db: crate::db::Db, mode: &str) -> (crate::db::TestDb, Harness) {
        let (test_db, store) = crate::db::TestDb::with_store(db).await;
        let harness = Harness::new(store, T0).await;
        harness.bind_test_guest(mode, None, None).await;
        (test_db, harness)
    }

    /// Like [`Harness::new`], with emails going to `email`.
    pub(crate) async fn with_email(store: Database, now: i64, email: Arc<dyn Transport>) -> Harness {
        Harness::with_transports(store, now, email, Arc::new(Discard)).await
    }

    /// Like [`Harness::new`], with emails and SMS going to the given transports.
    pub(crate) async fn with_transports(
        store: Database,
        now: i64,
        email: Arc<dyn Transport>,
        sms: Arc<dyn Transport>,
    ) -> Harness {
        let mut harness = Harness::attach_with(store, now, email, sms).await;
        harness.producer = harness.engine.store.create_producer("test producer", now).await.expect("producer").id;
        harness
    }

    /// Another engine (a restart, or a second replica) over the same store; no new producer.
    pub(crate) async fn attach(store: Database, now: i64) -> Harness {
        Harness::attach_with(store, now, Arc::new(Discard), Arc::new(Discard)).await
    }

    /// Like [`Harness::attach`], sending through the given transports.
    pub(crate) async fn attach_with(
        store: Database,
        now: i64,
        email: Arc<dyn Transport>,
        sms: Arc<dyn Transport>,
    ) -> Harness {
        Harness::attach_to(store, now, email, sms, Arc::new(crate::support::runtime())).await
    }

    /// Like [`Harness::attach_with`], running plugins in `runtime`.
    pub(crate) async fn attach_to(
        store: Database,
        now: i64,
        email: Arc<dyn Transport>,
        sms: Arc<dyn Transport>,
        runtime: Arc<Runtime>,
    ) -> Harness {
        let clock = Arc::new(VirtualClock::new(now));
        let engine = Pipeline::new(PipelineParts {
            store,
            runtime: runtime.clone() as Arc<Runtime>,
            clock: clock.clone(),
            email,
            sms,
            public_url: "https://funnel.test".into(),
            rate_caps: (None, None),
        });
        Harness { engine, clock, producer: String::new() }
    }

    /// Bind the test guest in `mode` at a scope (stored as an upload of the producer); returns
    /// the binding's id.
    pub(crate) async fn bind_test_guest(&self, mode: &str, product: Option<&str>, plan: Option<&str>) -> String {
        let sha = funnel_host::runtime::plugin::sha256_hex(guests::TEST_GUEST);
        let plugin = self.engine.plugins.by_sha(&sha, Some(guests::TEST_GUEST)).expect("loads");
        let stored = funnel_host::store::plugins::StoredPlugin {
            name: plugin.info.name.clone(),
            version: plugin.info.version.clone(),
            sha256: plugin.sha256.clone(),
            info: serde_json::json!({}),
        };
        self.engine
            .store
            .put_plugin(&self.producer, &stored, guests::TEST_GUEST, self.clock.now_ms())
            .await
            .expect("plugin");
        self.bind("test-guest", &sha, &serde_json::json!({ "mode": mode }), product, plan).await
    }

    /// Bind a built-in plugin at a scope; returns the binding's id.
    pub(crate) async fn bind_builtin(
        &self,
        name: &str,
        config: &serde_json::Value,
        product: Option<&str>,
        plan: Option<&str>,
    ) -> String {
        let sha = self.engine.plugins.builtin(name).expect("built-in").sha256.clone();
        self.bind(name, &sha, config, product, plan).await
    }

    async fn bind(
        &self,
        plugin: &str,
        sha: &str,
        config: &serde_json::Value,
        product: Option<&str>,
        plan: Option<&str>,
    ) -> String {
        let scope = funnel_host::domain::Scope::new(product, plan).expect("a plan binding names its product");
        let binding = funnel_host::store::bindings::NewBinding {
            producer_id: &self.producer,
            scope: &scope,
            plugin,
            plugin_sha256: sha,
            config,
            enabled: true,
            send_window: None,
        };
        self.engine.store.put_binding(&binding, self.clock.now_ms()).await.expect("binding").id
    }

    /// Post a platform event for a checkout of a product (any plan).
    pub(crate) async fn post(
        &self,
        event_id: &str,
        kind: PlatformEventType,
        checkout: &str,
        product: Option<&str>,
    ) -> IngestOutcome {
        self.post_for(&self.producer, event_id, kind, checkout, (product, None)).await
    }

    /// Post a platform event of `producer` for a checkout of `(product, plan)`; its email is
    /// `<checkout>@example.com`.
    pub(crate) async fn post_for(
        &self,
        producer: &str,
        event_id: &str,
        kind: PlatformEventType,
        checkout: &str,
        (product, plan): (Option<&str>, Option<&str>),
    ) -> IngestOutcome {
        let event = self.event_for(producer, event_id, kind, checkout, (product, plan));
        self.engine.store.ingest(&event, self.clock.now_ms()).await.expect("ingest")
    }

    /// The platform event [`Harness::post`] posts, for a test that wants the store's answer.
    pub(crate) fn event(&self, event_id: &str, kind: PlatformEventType, checkout: &str) -> PlatformEvent {
        self.event_for(&self.producer, event_id, kind, checkout, (None, None))
    }

    /// The platform event [`Harness::post_for`] posts.
    pub(crate) fn event_for(
        &self,
        producer: &str,
        event_id: &str,
        kind: PlatformEventType,
        checkout: &str,
        (product, plan): (Option<&str>, Option<&str>),
    ) -> PlatformEvent {
        PlatformEvent {
            id: event_id.into(),
            kind,
            occurred_at_ms: self.clock.now_ms(),
            producer_id: producer.to_string(),
            checkout: Checkout {
                id: checkout.into(),
                email: Some(EmailAddress::parse(&format!("{checkout}@example.com")).expect("email")),
                name: Some("Ana Souza".into()),
                phone: Some("+5511999990000".into()),
                product_id: product.map(str::to_string),
                plan_id: plan.map(str::to_string),
                price: Some(Price { amount_cents: 9700, currency: "BRL".into() }),
                url: Some("https://pay.example/c".into()),
                timezone: None,
            },
        }
    }

    pub(crate) fn clock_now(&self) -> i64 {
        use funnel_host::clock::Clock;
        self.clock.now_ms()
    }

    pub(crate) async fn settle(&self) {
        self.engine.settle().await.expect("settle");
    }

    /// Move the clock to `T0 + ms` and settle.
    pub(crate) async fn at(&self, ms: i64) {
        self.clock.set(T0 + ms);
        self.settle().await;
    }

    pub(crate) async fn timeline(&self, lead: &str) -> Vec<TimelineEntry> {
        self.engine.store.timeline(lead, 0).await.expect("timeline")
    }

    /// The lead's messages, oldest first.
    pub(crate) async fn messages(&self, lead: &str) -> Vec<MessageSnapshot> {
        self.engine.store.lead_snapshot(lead).await.expect("lead").messages
    }

    /// The lead's only message on `channel` ("email", "sms").
    pub(crate) async fn message(&self, lead: &str, channel: &str) -> MessageSnapshot {
        let mut found: Vec<_> =
            self.messages(lead).await.into_iter().filter(|m| m.channel.as_str() == channel).collect();
        assert_eq!(found.len(), 1, "one {channel} message for lead {lead}: {found:?}");
        found.remove(0)
    }
}

pub(crate) fn lead_id(outcome: &IngestOutcome) -> String {
    match outcome {
        IngestOutcome::Accepted { lead_id: Some(id) } | IngestOutcome::Duplicate { lead_id: Some(id) } => id.clone(),
        other => panic!("no lead: {other:?}"),
    }
}

/// The plugin log lines of a timeline that start with `prefix`.
pub(crate) fn logs_starting(timeline: &[TimelineEntry], prefix: &str) -> Vec<String> {
    timeline
        .iter()
        .filter(|e| e.kind() == TimelineKind::Log)
        .filter_map(|e| e.detail().strip_prefix("[info] plugin: ").map(str::to_string))
        .filter(|d| d.starts_with(prefix))
        .collect()
}
