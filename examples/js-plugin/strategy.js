// sms-first, written in JavaScript: the rules of the strategy, with no WebAssembly in sight.
//
// Read this file top to bottom as a tutorial; `plugin.js` wires it to the host. It is the same
// strategy as `examples/rust-plugin` and `examples/python-plugin`, and all three print the same
// `funnel simulate` timelines for the scenarios in `examples/sms-first/scenarios/`:
//
// * a lead **with a phone** gets an SMS first (`sms_after`, default 15 minutes);
// * every lead then gets one email (`email_after`, default 4 hours), and that email carries the
//   binding's coupon (the config's `coupon_line`, in the producer's language) only when the cart
//   is over `coupon_over_cents` (R$ 200,00 by default);
// * a purchase, an unsubscribe or a bounce ends the run.
//
// Everything here takes the host as an argument (`host.schedule`, `host.sendSms`, ...), so
// `test/strategy.test.js` runs these rules under node's own test runner with a recording host,
// and `test/timeline.test.js` runs the built component through the real `funnel simulate`.
//
// Values from the WIT contract (`wit/funnel.wit`), as JavaScript sees them (types/ has the
// TypeScript declarations the build generates for your editor):
// * numbers are numbers, 64-bit ones included (`lead.price.amountCents`, `invocation.nowMs`,
//   the milliseconds `host.schedule` takes): exact up to 2^53, far beyond any price or delay;
// * an `option` is the value or `null`; a record's fields are camelCase (`firstName`); a
//   `variant` is `{tag, val}` (`{tag: 'timer', val: {id, tag, lateMs}}`); an `enum` is its name
//   as a string (`'recovery'`, `'info'`); `list<u8>` (the state) is a Uint8Array;
// * a function returning `result` returns the ok value and *throws* the error: the host's
//   functions throw the host-error itself (`{tag: 'no-recipient'}`), and a plugin export
//   rejects by throwing (a string from `handle`, the config notes from `validateConfig`).

export const NAME = 'sms-first-js';
export const VERSION = '0.1.0';

// The timer tags this plugin schedules; the host hands them back in `{tag: 'timer'}` events.
export const TIMER_SMS = 'sms';
export const TIMER_EMAIL = 'email';

// The message tags, as they show in stats and in `funnel simulate`.
export const TAG_SMS = 'sms-1';
export const TAG_EMAIL = 'email-1';

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------
//
// The producer writes a JSON config per binding. `validateConfig` checks it when the binding is
// saved (every problem at once, each at its field), and `handle` reads it again on every event
// (it arrives as `invocation.configJson`). One parser serves both.

// Every field, in the order errors are reported: [name, kind, default]. A default of
// `undefined` means the field is required.
const FIELDS = [
  ['sms_after', 'duration', '15m'],
  ['sms', 'template', undefined],
  ['email_after', 'duration', '4h'],
  ['subject', 'template', undefined],
  ['html', 'template', undefined],
  ['coupon_line', 'coupon', undefined],
  ['coupon_over_cents', 'cents', 20000],
];
const FIELD_NAMES = FIELDS.map(([name]) => name);

const DURATION = /^(?:[0-9]+[smhd])+$/;
const DURATION_PART = /([0-9]+)([smhd])/g;
const UNIT_MS = { s: 1000, m: 60000, h: 3600000, d: 86400000 };

/** Milliseconds in `text` ("1h30m" -> 5400000), or undefined when it is not a duration. */
export function parseDuration(text) {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) return undefined;
  let total = 0;
  for (const [, n, unit] of trimmed.matchAll(DURATION_PART)) total += Number(n) * UNIT_MS[unit];
  // Beyond 2^53 a number is no longer exact: such a delay is a typo anyway.
  return Number.isSafeInteger(total) ? total : undefined;
}

/** The compound form, largest unit first: 900000 -> "15m", 5400000 -> "1h30m". */
export function formatDuration(ms) {
  if (ms === 0) return '0s';
  let out = '';
  for (const [unit, size] of [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]]) {
    if (ms >= size) {
      out += `${Math.floor(ms / size)}${unit}`;
      ms %= size;
    }
  }
  if (ms > 0) out += `${ms}ms`;
  return out;
}

/** Cents as a person in Brazil writes them: 20000 -> "R$ 200,00", 123456 -> "R$ 1.234,56". */
export function formatBrl(cents) {
  const reais = Math.floor(cents / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '.');
  return `R$ ${reais},${(cents % 100).toString().padStart(2, '0')}`;
}

/** What a JSON value is, in words, for error messages. */
function jsonType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'boolean':
      return 'a boolean';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    default:
      return 'an object';
  }
}

/** Whether a template uses the coupon: the host's own test (`coupon_code` anywhere). */
export function usesCoupon(template) {
  return template.includes('coupon_code');
}

const note = (path, message) => ({ path, message });

/**
 * Parse and check a config. Returns `{config}` or `{notes}` (every problem found).
 * @param {string} configJson
 */
export function parseConfig(configJson) {
  let raw;
  try {
    raw = JSON.parse(configJson);
  } catch (e) {
    return { notes: [note('', `the config is not valid JSON: ${e.message}`)] };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { notes: [note('', `the config must be a JSON object, got ${jsonType(raw)}`)] };
  }

  const notes = [];
  const expected = FIELD_NAMES.map((name) => `\`${name}\``).join(', ');
  for (const key of Object.keys(raw)) {
    if (!FIELD_NAMES.includes(key)) notes.push(note(key, `unknown field \`${key}\`, expected one of ${expected}`));
  }

  const values = {};
  for (const [name, kind, fallback] of FIELDS) {
    let value = raw[name];
    if (!Object.hasOwn(raw, name)) {
      if (fallback === undefined) {
        notes.push(note(name, `missing field \`${name}\``));
        continue;
      }
      value = fallback;
    }
    if (kind === 'duration') {
      if (typeof value !== 'string') {
        notes.push(note(name, `expected a duration like "15m", got ${jsonType(value)}`));
        continue;
      }
      const ms = parseDuration(value);
      if (ms === undefined) {
        notes.push(note(name, `${JSON.stringify(value)} is not a duration: write a number and a unit, e.g. "20m"`));
        continue;
      }
      values[name] = ms;
    } else if (kind === 'template' || kind === 'coupon') {
      if (typeof value !== 'string') {
        notes.push(note(name, `expected a string, got ${jsonType(value)}`));
        continue;
      }
      if (value.trim() === '') {
        notes.push(note(name, 'must not be empty'));
        continue;
      }
      // The plugin decides who gets the coupon (big carts only) by adding `coupon_line`, so the
      // other templates must not mention it, and `coupon_line` (the producer's words) must.
      if (kind === 'template' && usesCoupon(value)) {
        notes.push(
          note(name, 'must not use {{coupon_code}}: the plugin adds coupon_line to the email of a cart over coupon_over_cents'),
        );
        continue;
      }
      if (kind === 'coupon' && !usesCoupon(value)) {
        notes.push(note(name, 'must show the code with {{coupon_code}}'));
        continue;
      }
      values[name] = value;
    } else {
      // cents: a whole, non-negative number (JSON numbers are doubles: beyond 2^53 they are
      // not exact, so such a number is refused rather than rounded).
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        notes.push(note(name, `expected a non-negative whole number of cents, got ${JSON.stringify(value)}`));
        continue;
      }
      values[name] = value;
    }
  }

  // Checks across fields, only when both fields are fine on their own.
  if (values.sms_after !== undefined && values.email_after !== undefined && values.email_after <= values.sms_after) {
    notes.push(
      note(
        'email_after',
        `must be after sms_after (${formatDuration(values.sms_after)}), got ${formatDuration(values.email_after)}`,
      ),
    );
  }
  if (notes.length > 0) return { notes };
  return {
    config: {
      smsAfterMs: values.sms_after,
      sms: values.sms,
      emailAfterMs: values.email_after,
      subject: values.subject,
      html: values.html,
      couponLine: values.coupon_line,
      couponOverCents: values.coupon_over_cents,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The three exports of world `funnel`, over a host passed in
// ---------------------------------------------------------------------------------------------

/** `describe`: who the plugin is. The host refuses a capability call not declared here. */
export function describe() {
  return {
    name: NAME,
    version: VERSION,
    description: 'An SMS first to leads with a phone, then one email; a coupon only for big carts',
    capabilities: ['email', 'sms', 'timers', 'coupons'],
  };
}

/** `validate-config`: a report for a usable config; throws the notes of an unusable one. */
export function validateConfig(configJson, binding) {
  const { config, notes } = parseConfig(configJson);
  if (config === undefined) throw notes;
  const summary =
    `SMS after ${formatDuration(config.smsAfterMs)} to leads with a phone, ` +
    `then one email after ${formatDuration(config.emailAfterMs)}; ` +
    `coupon for carts over ${formatBrl(config.couponOverCents)}`;
  // Not an error: the producer may use the same strategy where there is no coupon.
  const remarks = binding.coupon == null ? [note('', 'no coupon on this binding: every email goes without one')] : [];
  return { summary, notes: remarks };
}

/** The host's own test: a phone that is present and not blank. */
function hasPhone(phone) {
  return phone != null && phone.trim() !== '';
}

/** The producer's coupon line (plain text, in the email's language) as a paragraph of the
 * email's HTML, as the Rust SDK's `funnel_sdk::coupon::add_line` adds it. */
export function couponParagraph(line) {
  const escaped = line.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
  return `<p>${escaped}</p>`;
}

/** The state kept between events: a small JSON object (the strategy needs little). */
function encodeState(smsPlanned) {
  return utf8(JSON.stringify({ v: 1, sms_planned: smsPlanned }));
}

/** UTF-8 bytes of a string. (QuickJS has no TextEncoder; this is all the plugin needs of it.) */
export function utf8(text) {
  const bytes = [];
  for (const char of text) {
    const c = char.codePointAt(0);
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return new Uint8Array(bytes);
}

/** The host-error of a failed host call: what it threw (or that thing's `payload`, as other
 * JavaScript component builders wrap it). */
function hostError(e) {
  return e !== null && typeof e === 'object' && 'payload' in e ? e.payload : e;
}

/**
 * `handle`: one event of one lead. Returns the state to keep (a Uint8Array), `null` to
 * end the run (the host cancels the lead's pending timers), or throws a string to reject the
 * event (everything recorded in this call is discarded and the host retries).
 */
export function handle(invocation, host) {
  const { lead, event } = invocation;
  // The state to keep when nothing changes (never null here: that would end the run).
  const keep = invocation.state ?? encodeState(hasPhone(lead.phone));

  switch (event.tag) {
    case 'captured': {
      if (lead.purchased || lead.suppressed) return null; // nothing to recover, or nobody to write to
      const config = configOf(invocation);
      const sms = hasPhone(lead.phone);
      if (sms) call(() => host.schedule(config.smsAfterMs, TIMER_SMS), 'schedule the SMS');
      call(() => host.schedule(config.emailAfterMs, TIMER_EMAIL), 'schedule the email');
      return encodeState(sms);
    }
    case 'timer': {
      if (event.val.tag === TIMER_SMS) {
        if (!lead.purchased) {
          const config = configOf(invocation);
          send(host, () => host.sendSms(config.sms, TAG_SMS, 'recovery'), TAG_SMS);
        }
        return keep;
      }
      if (event.val.tag === TIMER_EMAIL) {
        if (!lead.purchased) {
          const config = configOf(invocation);
          const coupon = bigCart(lead, config) && host.coupon() != null;
          const html = coupon ? config.html + couponParagraph(config.couponLine) : config.html;
          send(host, () => host.sendEmail(config.subject, html, null, TAG_EMAIL, 'recovery'), TAG_EMAIL);
        }
        return null; // the email was the last step
      }
      return keep; // a timer this plugin does not know: ignore it
    }
    case 'purchased':
    case 'unsubscribed':
    case 'bounced':
      return null; // bought, or cannot be written to any more: stop
    default:
      return keep; // updated, refunded, clicked, opened: nothing to do
  }
}

/** The config of an invocation. The host stores only configs that passed `validateConfig`, so
 * this fails only if the plugin changed under an old config: then the event is rejected. */
function configOf(invocation) {
  const { config, notes } = parseConfig(invocation.configJson);
  if (config === undefined) {
    throw `${NAME}: bad config: ${notes.map((n) => (n.path ? `${n.path}: ${n.message}` : n.message)).join('; ')}`;
  }
  return config;
}

/** Whether the cart is priced strictly over `coupon_over_cents` (no price: not big). */
export function bigCart(lead, config) {
  return lead.price != null && lead.price.amountCents > config.couponOverCents;
}

/** A host call whose refusal rejects the event, with what was being done. */
function call(f, what) {
  try {
    return f();
  } catch (e) {
    throw `${NAME}: ${what}: the host refused it: ${JSON.stringify(hostError(e))}`;
  }
}

/** Queue a message. When the host will not deliver to this lead (no phone, or the person
 * unsubscribed or bounced) it says so with an error: log it and go on. Any other refusal (a
 * limit, a bad argument) rejects the event. */
function send(host, f, tag) {
  try {
    f();
  } catch (e) {
    const error = hostError(e);
    if (error?.tag === 'no-recipient' || error?.tag === 'suppressed') {
      host.log('info', `${NAME}: ${tag} not sent: ${error.tag}`);
      return;
    }
    throw `${NAME}: ${tag}: the host refused it: ${JSON.stringify(error)}`;
  }
}
