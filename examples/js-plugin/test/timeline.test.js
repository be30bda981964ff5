// The plugin through the real runtime: build the component, run every scenario with
// `funnel simulate` on a virtual clock, and compare with the expected timeline beside it.
// `FUNNEL_BLESS=1 npm test` writes the timelines it gets as the expected ones instead.
//
// Needs `funnel`: $FUNNEL_BIN, the `funnel_bin` of package.json's config (what `funnel plugin
// new` writes), or `funnel` on PATH.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
// config.json, scenarios/ and expected/: beside the plugin in a project made by `funnel plugin
// new`, in ../sms-first in funnel's repository.
const fixtures = existsSync(join(here, 'scenarios')) ? here : join(here, '../sms-first');

function funnelBin() {
  const configured = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).config?.funnel_bin;
  for (const candidate of [process.env.FUNNEL_BIN, configured]) {
    if (candidate) return candidate;
  }
  const onPath = (process.env.PATH ?? '').split(':').map((dir) => join(dir, 'funnel')).find((p) => existsSync(p));
  if (onPath) return onPath;
  throw new Error('no funnel binary: put `funnel` on PATH or set FUNNEL_BIN=/path/to/funnel');
}

let funnel;
let wasm;

before(() => {
  funnel = funnelBin();
  wasm = execFileSync('node', [join(here, 'build.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
});

function simulate(scenario, config, ...flags) {
  const args = ['simulate', '--plugin', wasm, '--config', config, '--scenario', scenario, ...flags];
  return spawnSync(funnel, args, { encoding: 'utf8' });
}

test('every scenario prints its expected timeline', () => {
  const scenarios = readdirSync(join(fixtures, 'scenarios')).filter((f) => f.endsWith('.json')).sort();
  assert.ok(scenarios.length > 0, `no scenarios in ${join(fixtures, 'scenarios')}`);
  const diffs = [];
  for (const file of scenarios) {
    const stem = file.replace(/\.json$/, '');
    const expectedPath = join(fixtures, 'expected', `${stem}.jsonl`);
    const out = simulate(join(fixtures, 'scenarios', file), join(fixtures, 'config.json'));
    assert.equal(out.status, 0, `${file}: funnel simulate failed:\n${out.stderr}`);
    const expected = existsSync(expectedPath) ? readFileSync(expectedPath, 'utf8') : '';
    if (out.stdout === expected) continue;
    if (process.env.FUNNEL_BLESS === '1') {
      writeFileSync(expectedPath, out.stdout);
      console.error(`FUNNEL_BLESS: wrote ${expectedPath}`);
    } else {
      diffs.push(`--- expected/${stem}.jsonl\n+++ funnel simulate scenarios/${file}\n-${expected.trimEnd().split('\n').join('\n-')}\n+${out.stdout.trimEnd().split('\n').join('\n+')}`);
    }
  }
  assert.deepEqual(diffs, [], `timelines differ (FUNNEL_BLESS=1 npm test accepts the new ones):\n${diffs.join('\n')}`);
});

test('a config whose email comes before the SMS is refused at email_after, in one line', () => {
  const config = JSON.parse(readFileSync(join(fixtures, 'config.json'), 'utf8'));
  Object.assign(config, { sms_after: '15m', email_after: '10m' });
  const bad = join(mkdtempSync(join(tmpdir(), 'funnel-js-')), 'bad.json');
  writeFileSync(bad, JSON.stringify(config));
  const scenario = readdirSync(join(fixtures, 'scenarios')).find((f) => f.endsWith('.json'));
  const out = simulate(join(fixtures, 'scenarios', scenario), bad);
  assert.equal(out.status, 2, out.stderr);
  assert.match(out.stderr, /config: email_after: /);
  assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
});
