//! The console's words: one catalog per language ([`en`], [`pt_br`]), each a value of
//! [`Strings`], so a string missing from a catalog is a compile error. [`Lang`] picks the
//! catalog from the browser's `Accept-Language`: Brazilian Portuguese when the browser asks
//! for `pt-BR` (or plain `pt`) before English, English otherwise.
//!
//! ## Layout
//! - [`en`]: English, the default.
//! - [`pt_br`]: Brazilian Portuguese.

pub(crate) mod en;
pub(crate) mod pt_br;

use axum::http::HeaderMap;

/// A language of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    PtBr,
}

impl Lang {
    pub(crate) fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &en::EN,
            Lang::PtBr => &pt_br::PT_BR,
        }
    }

    /// The `lang` attribute of pages.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::PtBr => "pt-BR",
        }
    }

    /// The language the browser prefers among ours (highest `q`, then first listed).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Lang {
        let Some(value) = headers.get("accept-language").and_then(|v| v.to_str().ok()) else { return Lang::En };
        Lang::from_accept_language(value)
    }

    pub(crate) fn from_accept_language(value: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        // At most 20 entries: the header is the browser's, but bounded all the same.
        for part in value.split(',').take(20) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag == "pt-br" || tag == "pt" {
                Lang::PtBr
            } else if tag == "en" || tag.starts_with("en-") || tag == "*" {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }
}

/// Every string the console shows.
#[derive(Debug)]
pub(crate) struct Strings {
    pub skip_to_content: &'static str,
    pub console: &'static str,
    pub nav_label: &'static str,
    pub nav_leads: &'static str,
    pub nav_strategy: &'static str,
    pub nav_simulate: &'static str,
    pub nav_plugins: &'static str,
    pub nav_stats: &'static str,
    pub signed_in_as: &'static str,
    pub sign_out: &'static str,
    pub footer: &'static str,
    pub not_found_title: &'static str,
    pub refused_title: &'static str,
    pub error_title: &'static str,
    pub back_to_console: &'static str,
    pub internal_error: &'static str,
    pub csrf_refused: &'static str,
    pub form_too_big: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_intro: &'static str,
    pub sign_in_help: &'static str,
    pub api_key: &'static str,
    pub sign_in: &'static str,
    pub api_key_missing: &'static str,
    pub api_key_wrong: &'static str,
    pub signed_out: &'static str,
    pub leads_title: &'static str,
    pub leads_intro: &'static str,
    pub export_csv: &'static str,
    pub filters: &'static str,
    pub search_email: &'static str,
    pub status: &'static str,
    pub any_status: &'static str,
    pub product: &'static str,
    pub plan_label: &'static str,
    pub plan: &'static str,
    pub any_product: &'static str,
    pub captured_from: &'static str,
    pub captured_to: &'static str,
    pub apply_filters: &'static str,
    pub clear_filters: &'static str,
    pub no_leads: &'static str,
    pub no_more_leads: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    pub phone: &'static str,
    pub product_plan: &'static str,
    pub cart_value: &'static str,
    pub captured_at: &'static str,
    pub last_message: &'static str,
    pub pages: &'static str,
    pub first_page: &'static str,
    pub next_page: &'static str,
    pub filter_bad_status: &'static str,
    pub filter_bad_date: &'static str,
    pub filter_to_before_from: &'static str,
    pub filter_search_too_long: &'static str,
    pub status_open: &'static str,
    pub status_recovering: &'static str,
    pub status_recovered: &'static str,
    pub status_purchased: &'static str,
    pub status_refunded: &'static str,
    pub status_unsubscribed: &'static str,
    pub status_parked: &'static str,
    pub msg_queued: &'static str,
    pub msg_sent: &'static str,
    pub msg_dropped: &'static str,
    pub msg_bounced: &'static str,
    pub msg_failed: &'static str,
    pub lead_title: &'static str,
    pub lead_not_found: &'static str,
    pub strategy: &'static str,
    pub purchased_at: &'static str,
    pub recovered_revenue: &'static str,
    pub checkout_url: &'static str,
    pub timeline: &'static str,
    pub timeline_empty: &'static str,
    pub late: &'static str,
    pub late_by: &'static str,
    pub see_message: &'static str,
    pub messages: &'static str,
    pub no_messages: &'static str,
    pub credited_recovery: &'static str,
    pub queued_at: &'static str,
    pub sent_at: &'static str,
    pub clicked_at: &'static str,
    pub opened_at: &'static str,
    pub coupon: &'static str,
    pub reason: &'static str,
    pub subject: &'static str,
    pub email_preview: &'static str,
    pub text_version: &'static str,
    pub tl_timer_fired: &'static str,
    pub tl_captured: &'static str,
    pub tl_updated: &'static str,
    pub tl_purchased: &'static str,
    pub tl_refunded: &'static str,
    pub tl_clicked: &'static str,
    pub tl_opened: &'static str,
    pub tl_unsubscribed: &'static str,
    pub tl_bounced: &'static str,
    pub tl_event: &'static str,
    pub tl_event_failed: &'static str,
    pub tl_event_skipped: &'static str,
    pub tl_email_sent: &'static str,
    pub tl_sms_sent: &'static str,
    pub tl_dropped: &'static str,
    pub tl_deferred: &'static str,
    pub tl_message_bounced: &'static str,
    pub tl_send_failed: &'static str,
    pub tl_log: &'static str,
    pub tl_timer_set: &'static str,
    pub tl_coupon_assigned: &'static str,
    pub tl_variant: &'static str,
    pub tl_list_add: &'static str,
    pub tl_list_remove: &'static str,
    pub tl_run_ended: &'static str,
    pub tl_retry: &'static str,
    pub tl_failed: &'static str,
    pub strategy_title: &'static str,
    pub strategy_intro: &'static str,
    pub no_bindings: &'static str,
    pub scope: &'static str,
    pub plugin: &'static str,
    pub leads_served: &'static str,
    pub send_window: &'static str,
    pub any_time: &'static str,
    pub state: &'static str,
    pub actions: &'static str,
    pub enabled: &'static str,
    pub disabled: &'static str,
    pub edit: &'static str,
    pub enable: &'static str,
    pub disable: &'static str,
    pub new_binding: &'static str,
    pub precedence: &'static str,
    pub product_id_optional: &'static str,
    pub plan_id_optional: &'static str,
    pub continue_: &'static str,
    pub all_products: &'static str,
    pub plan_needs_product: &'static str,
    pub binding_not_found: &'static str,
    pub saved: &'static str,
    pub fix_errors: &'static str,
    pub fe_general: &'static str,
    pub fe_how_many: &'static str,
    pub fe_min_price: &'static str,
    pub fe_rules: &'static str,
    pub fe_email: &'static str,
    pub fe_used_when: &'static str,
    pub fe_disabled: &'static str,
    pub fe_after_first: &'static str,
    pub fe_after_next: &'static str,
    pub fe_html: &'static str,
    pub fe_text: &'static str,
    pub fe_coupon: &'static str,
    pub fe_coupon_needs_plan: &'static str,
    pub flow_drawing: &'static str,
    pub flow_legend: &'static str,
    pub flow_steps_table: &'static str,
    pub step: &'static str,
    pub action: &'static str,
    pub live_counts: &'static str,
    pub json_config: &'static str,
    pub json_checked_by_plugin: &'static str,
    pub json_invalid: &'static str,
    pub flow_waiting: &'static str,
    pub flow_sent: &'static str,
    pub flow_clicked: &'static str,
    pub flow_recovered: &'static str,
    pub flow_yes: &'static str,
    pub flow_no: &'static str,
    pub flow_end: &'static str,
    pub flow_on_purchase: &'static str,
    pub flow_on_click: &'static str,
    pub flow_on_unsubscribe: &'static str,
    pub binding_enabled: &'static str,
    pub save: &'static str,
    pub try_it: &'static str,
    pub bad_price: &'static str,
    pub simulate_title: &'static str,
    pub simulate_intro: &'static str,
    pub sim_against_edit: &'static str,
    pub sim_binding: &'static str,
    pub sim_no_bindings: &'static str,
    pub sim_lead: &'static str,
    pub currency: &'static str,
    pub sim_until: &'static str,
    pub sim_events: &'static str,
    pub sim_events_help: &'static str,
    pub sim_what: &'static str,
    pub sim_at: &'static str,
    pub sim_message_n: &'static str,
    pub sim_run: &'static str,
    pub sim_result: &'static str,
    pub sim_nothing: &'static str,
    pub sim_kind: &'static str,
    pub sim_detail: &'static str,
    pub tag: &'static str,
    pub bad_message_number: &'static str,
    pub plugin_not_found: &'static str,
    pub ev_click: &'static str,
    pub ev_open: &'static str,
    pub ev_paid: &'static str,
    pub ev_refunded: &'static str,
    pub ev_unsubscribe: &'static str,
    pub ev_updated: &'static str,
    pub plugins_title: &'static str,
    pub plugins_intro: &'static str,
    pub upload_title: &'static str,
    pub upload_file: &'static str,
    pub upload_name: &'static str,
    pub upload_version: &'static str,
    pub upload: &'static str,
    pub upload_no_file: &'static str,
    pub upload_unreadable: &'static str,
    pub upload_busy: &'static str,
    pub upload_too_slow: &'static str,
    pub uploaded: &'static str,
    pub builtin: &'static str,
    pub uploaded_badge: &'static str,
    /// An upload's check: still compiling, ready, failed (with the reason beside it).
    pub plugin_compiling: &'static str,
    pub plugin_ready: &'static str,
    pub plugin_failed: &'static str,
    pub plugin_status: &'static str,
    pub size: &'static str,
    pub capabilities: &'static str,
    pub uploaded_at: &'static str,
    pub used_by: &'static str,
    pub unused: &'static str,
    pub stats_title: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub stats_bad_range: &'static str,
    pub stats_leads: &'static str,
    pub stats_recovered: &'static str,
    pub stats_conversion: &'static str,
    pub stats_totals_note: &'static str,
    pub stats_capped: &'static str,
    pub stats_capped_note: &'static str,
    pub stats_leads_chart: &'static str,
    pub stats_captured: &'static str,
    pub stats_revenue_chart: &'static str,
    pub stats_per_message: &'static str,
    pub stats_no_messages: &'static str,
    pub stats_per_variant: &'static str,
    pub stats_per_variant_note: &'static str,
    pub stats_split_step: &'static str,
    pub stats_variant: &'static str,
    pub stats_sent: &'static str,
    pub stats_clicked: &'static str,
    pub stats_per_day_table: &'static str,
    pub day: &'static str,
    pub nav_webhooks: &'static str,
    pub webhooks_title: &'static str,
    pub webhooks_intro: &'static str,
    pub webhooks_none: &'static str,
    pub webhook_events: &'static str,
    pub webhook_created: &'static str,
    pub webhook_recent: &'static str,
    pub webhook_no_deliveries: &'static str,
    pub delivery_event: &'static str,
    pub delivery_status: &'static str,
    pub delivery_attempts: &'static str,
    pub delivery_last: &'static str,
    pub delivery_when: &'static str,
    pub delivery_next: &'static str,
    pub delivery_pending: &'static str,
    pub delivery_delivered: &'static str,
    pub delivery_failed: &'static str,
    pub delivery_no_answer: &'static str,
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn brazilian_portuguese_when_the_browser_asks_for_it() {
        assert_eq!(Lang::from_accept_language("pt-BR,pt;q=0.9,en;q=0.8"), Lang::PtBr);
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,pt-BR;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("de-DE,pt;q=0.7"), Lang::PtBr);
        assert_eq!(Lang::from_accept_language("de-DE"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::from_accept_language("pt-BR;q=0"), Lang::En);
    }
}
