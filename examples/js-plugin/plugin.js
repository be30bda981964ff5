// The component's entry point: the three exports of world `funnel` (wit/funnel.wit), each
// handing the real host to the rules in `strategy.js`. `npm run build` (or `funnel plugin
// build`) turns this module into a WebAssembly component; `funnel:plugin/host@0.2.0` is the
// host interface the component imports, typed in types/ for your editor.
import * as host from 'funnel:plugin/host@0.2.0';

import * as strategy from './strategy.js';

/** @returns {import('funnel:plugin/funnel@0.2.0').PluginInfo} */
export function describe() {
  return strategy.describe();
}

/** @type {typeof import('funnel:plugin/funnel@0.2.0').validateConfig} */
export function validateConfig(configJson, binding) {
  return strategy.validateConfig(configJson, binding);
}

/** @type {typeof import('funnel:plugin/funnel@0.2.0').handle} */
export function handle(invocation) {
  try {
    return strategy.handle(invocation, host);
  } catch (e) {
    // `handle` rejects with a string. A bug (a TypeError, say) is reported the same way, with
    // what it said, rather than trapping without a word.
    throw typeof e === 'string' ? e : `${strategy.NAME}: ${e?.stack ?? e}`;
  }
}
