// The strategy's rules under node's own test runner (`npm test`), with a host that records
// what the plugin asks for. `timeline.test.js` runs the same rules as a component through the
// real `funnel simulate`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as strategy from '../strategy.js';

const VALID = {
  sms: 'Oi {{first_name}}',
  subject: 'Volta',
  html: '<p>Volta</p>',
  coupon_line: 'Use o cupom {{coupon_code}} ao finalizar.',
};

/** A host that records every call, refusing SMS like the real one when the lead has no phone. */
function recordingHost({ coupon = null, phone = true } = {}) {
  const calls = [];
  return {
    calls,
    schedule: (ms, tag) => calls.push(['schedule', ms, tag]) && `timer-${calls.length}`,
    sendSms: (body, tag, kind) => {
      if (!phone) throw { tag: 'no-recipient' };
      calls.push(['sms', body, tag, kind]);
      return 'm1';
    },
    sendEmail: (subject, html, text, tag, kind) => calls.push(['email', subject, html, text, tag, kind]) && 'm2',
    coupon: () => coupon,
    log: (level, text) => calls.push(['log', level, text]),
  };
}

function invocation(event, { phone = '+5511999990000', cents = 29700, purchased = false, config = VALID } = {}) {
  return {
    lead: {
      id: 'l1',
      email: 'ana@example.com',
      name: 'Ana Souza',
      firstName: 'Ana',
      phone,
      productId: 'p1',
      planId: 'q1',
      price: cents === null ? null : { amountCents: cents, currency: 'BRL' },
      capturedAtMs: 0,
      purchased,
      suppressed: false,
    },
    event,
    nowMs: 0,
    configJson: JSON.stringify(config),
    state: null,
  };
}

const timer = (tag) => ({ tag: 'timer', val: { id: 't', tag, lateMs: 0 } });

test('defaults fill the timing and the threshold, and the summary says so', () => {
  const report = strategy.validateConfig(JSON.stringify(VALID), { scope: { productId: 'p1', planId: 'q1' }, coupon: { code: 'X', discountPercent: 10 } });
  assert.equal(report.summary, 'SMS after 15m to leads with a phone, then one email after 4h; coupon for carts over R$ 200,00');
  assert.deepEqual(report.notes, []);
});

test('every problem of a config is reported at its field', () => {
  const bad = { ...VALID, sms: '{{coupon_code}}', coupon_line: 'Use o cupom.', sms_after: '1h', email_after: '30m', smsafter: 1 };
  assert.throws(
    () => strategy.validateConfig(JSON.stringify(bad), { scope: {}, coupon: null }),
    (notes) => {
      assert.deepEqual(
        notes.map((n) => n.path),
        ['smsafter', 'sms', 'coupon_line', 'email_after'],
      );
      assert.match(notes[3].message, /must be after sms_after \(1h\), got 30m/);
      return true;
    },
  );
});

test('a lead with a phone gets the SMS timer, then the email timer', () => {
  const host = recordingHost();
  const state = strategy.handle(invocation({ tag: 'captured' }), host);
  assert.ok(state instanceof Uint8Array);
  assert.deepEqual(host.calls, [['schedule', 15 * 60 * 1000, 'sms'], ['schedule', 4 * 3600 * 1000, 'email']]);
});

test('only a cart over the threshold gets the coupon line, in the producer\'s words', () => {
  for (const [cents, withLine] of [[20001, true], [20000, false], [null, false]]) {
    const host = recordingHost({ coupon: { code: 'VOLTA10', discountPercent: 10 } });
    assert.equal(strategy.handle(invocation(timer('email'), { cents }), host), null, 'the email ends the run');
    const [, , html] = host.calls.find(([kind]) => kind === 'email');
    assert.equal(html.includes('<p>Use o cupom {{coupon_code}} ao finalizar.</p>'), withLine, `${cents}`);
  }
});

test('no SMS for a lead without a phone is logged, not an error', () => {
  const host = recordingHost({ phone: false });
  strategy.handle(invocation(timer('sms'), { phone: null }), host);
  assert.deepEqual(host.calls, [['log', 'info', 'sms-first-js: sms-1 not sent: no-recipient']]);
});

test('a purchase ends the run', () => {
  assert.equal(strategy.handle(invocation({ tag: 'purchased', val: null }), recordingHost()), null);
});

test('state bytes are UTF-8, as TextEncoder would write them', () => {
  for (const text of ['{"v":1}', 'ação €', '😀']) {
    assert.deepEqual(strategy.utf8(text), new TextEncoder().encode(text));
  }
});

test('money and durations read as a person in Brazil writes them', () => {
  assert.equal(strategy.formatBrl(123456), 'R$ 1.234,56');
  assert.equal(strategy.formatBrl(0), 'R$ 0,00');
  assert.equal(strategy.parseDuration('1h30m'), 5400000);
  assert.equal(strategy.parseDuration('20'), undefined);
  assert.equal(strategy.formatDuration(5400000), '1h30m');
});
