//! The holds delivery applies to a claimed recovery message before sending it, in one place
//! ([`check`], called once from the deliverer): the lead's send window (already applied when the
//! message was queued; checked again here because a backlog can carry it past closing) and the
//! producer's contact frequency cap. A held message is queued again for later, never sent early;
//! only a cap set to `drop` drops one. Transactional messages are never held.

use super::send_time_veto;
use crate::domain::MessageKind;
use crate::domain::window::{Hold, HoldReason};
use crate::store::Database;
use crate::store::outbox::{OutboxMessage, Outcome};
use crate::store::settings::CapOver;

/// How long to wait before trying again when the store could not answer the cap's question.
const STORE_TROUBLE_RETRY_MS: i64 = 30_000;

/// What to do with `message` instead of sending it at `now`, if anything.
pub(crate) async fn check(store: &Database, message: &OutboxMessage, now: i64) -> Option<Outcome> {
    debug_assert!(send_time_veto(message).is_none(), "vetoes come first");
    if message.kind != MessageKind::Recovery {
        return None;
    }
    if let Some(hold) = Hold::window(message.send_window.as_ref(), now) {
        return Some(Outcome::Held(hold));
    }
    match contact_cap(store, message, now).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(message = %message.id, error = %e, "contact cap not checked; trying again shortly");
            Some(Outcome::Deferred { at: now + STORE_TROUBLE_RETRY_MS })
        }
    }
}

/// The cap's verdict: `None` while the contact is under it.
async fn contact_cap(
    store: &Database,
    message: &OutboxMessage,
    now: i64,
) -> Result<Option<Outcome>, crate::store::StoreError> {
    let Some(cap) = store.contact_cap(&message.producer_id).await? else { return Ok(None) };
    let sends =
        store.recent_recovery_sends(&message.producer_id, &message.contact, now - cap.per_ms, cap.count).await?;
    // Under the cap while fewer than `count` went out in the last `per`; else a slot frees when
    // the oldest of the last `count` sends leaves the period.
    let index = usize::try_from(cap.count).unwrap_or(usize::MAX).saturating_sub(1);
    let Some(oldest) = sends.get(index).copied() else { return Ok(None) };
    Ok(Some(match cap.over {
        CapOver::Drop => Outcome::Dropped(HoldReason::ContactCap.as_str().to_string()),
        CapOver::Defer => {
            // Freed by the cap, the message must still fall inside its window.
            let freed = oldest + cap.per_ms;
            let until = message.send_window.as_ref().map_or(freed, |w| w.opens_at(freed));
            let zone = message.send_window.as_ref().map(|w| w.timezone());
            Outcome::Held(Hold {
                until,
                reason: HoldReason::ContactCap,
                local: Some(zone.map_or_else(|| utc_text(until), |z| z.local_text(until))),
            })
        }
    }))
}

fn utc_text(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map_or_else(|| format!("{at_ms} ms"), |t| t.format("%Y-%m-%d %H:%M %a (UTC)").to_string())
}
