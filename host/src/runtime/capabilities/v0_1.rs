//! The `host` interface as components built against `funnel:plugin@0.1.0` import it. Each
//! function is the current one: 0.1.0 is a subset of today's contract with the same types, so
//! this file only forwards, and a 0.1.0 plugin behaves exactly as it did when it was built.

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::state::InvocationState;
use crate::runtime::wit::funnel::plugin::host::Host as Current;
use crate::runtime::wit::{Coupon, HostError, LogLevel, MessageKind, SentMessage};
use crate::runtime::wit_0_1::funnel::plugin::host;

/// Define `funnel:plugin/types@0.1.0` and `funnel:plugin/host@0.1.0` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    // The types interface has no functions; a component still imports it by name.
    linker.instance("funnel:plugin/types@0.1.0")?;
    host::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

impl host::Host for InvocationState {
    fn send_email(
        &mut self,
        subject: String,
        html: String,
        text: Option<String>,
        tag: String,
        kind: MessageKind,
    ) -> wasmtime::Result<Result<String, HostError>> {
        Current::send_email(self, subject, html, text, tag, kind)
    }

    fn send_sms(
        &mut self,
        body: String,
        tag: String,
        kind: MessageKind,
    ) -> wasmtime::Result<Result<String, HostError>> {
        Current::send_sms(self, body, tag, kind)
    }

    fn schedule(&mut self, after_ms: u64, tag: String) -> wasmtime::Result<Result<String, HostError>> {
        Current::schedule(self, after_ms, tag)
    }

    fn cancel(&mut self, id: String) -> wasmtime::Result<()> {
        Current::cancel(self, id)
    }

    fn cancel_all(&mut self) -> wasmtime::Result<()> {
        Current::cancel_all(self)
    }

    fn add_to_list(&mut self, name: String) -> wasmtime::Result<Result<(), HostError>> {
        Current::add_to_list(self, name)
    }

    fn remove_from_list(&mut self, name: String) -> wasmtime::Result<Result<(), HostError>> {
        Current::remove_from_list(self, name)
    }

    fn lists(&mut self) -> wasmtime::Result<Vec<String>> {
        Current::lists(self)
    }

    fn coupon(&mut self) -> wasmtime::Result<Option<Coupon>> {
        Current::coupon(self)
    }

    fn messages(&mut self) -> wasmtime::Result<Vec<SentMessage>> {
        Current::messages(self)
    }

    fn log(&mut self, level: LogLevel, text: String) -> wasmtime::Result<()> {
        Current::log(self, level, text)
    }
}
