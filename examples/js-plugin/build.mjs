// Build the JavaScript plugin into a WebAssembly component, and its TypeScript declarations.
//
//   node build.mjs [OUT]      OUT defaults to build/sms_first_js.wasm (relative to this folder)
//   node build.mjs --types    only (re)write types/ for your editor
//
// (`funnel plugin build` and `npm run build` run this.) The toolchain is pinned by
// toolchain/package-lock.json: componentize-qjs (QuickJS compiled to WebAssembly, with the
// module's top level run at build time and snapshotted) makes the component, and jco's WIT
// bindgen writes types/. It is installed once with npm into
// ${FUNNEL_JS_TOOLCHAIN:-~/.cache/funnel/js-toolchain-<hash of the lock>}, with npm's
// downloads cached in ~/.cache/funnel/npm, so nothing lands in this folder but build/ and
// types/, and every build after the first runs offline. Prints one line: where the component is.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const NAME = 'sms_first_js';
const ENTRY = join(here, 'plugin.js');

/** Say something on stderr: stdout is the component's path only. */
const say = (text) => process.stderr.write(`build.mjs: ${text}\n`);

function fail(text) {
  say(text);
  process.exit(1);
}

// The contract: ./wit in a standalone project (what `funnel plugin new --lang js` makes), else
// the repository's wit/ two levels up.
const wit = [join(here, 'wit'), join(here, '../../wit')].find((dir) => existsSync(join(dir, 'funnel.wit')));
if (wit === undefined) fail(`no funnel.wit in ${join(here, 'wit')} or ${join(here, '../../wit')}`);

/** The toolchain folder, installed on first use; keyed by the lock so a new pin installs anew. */
function toolchain() {
  const lock = readFileSync(join(here, 'toolchain/package-lock.json'));
  const manifest = readFileSync(join(here, 'toolchain/package.json'));
  const key = createHash('sha256').update(manifest).update(lock).digest('hex').slice(0, 12);
  const cache = join(homedir(), '.cache/funnel');
  const dir = process.env.FUNNEL_JS_TOOLCHAIN || join(cache, `js-toolchain-${key}`);
  if (existsSync(join(dir, 'node_modules/.funnel-installed'))) return dir;
  say(`installing the toolchain (componentize-qjs, jco-transpile) into ${dir}, once`);
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  cpSync(join(here, 'toolchain/package.json'), join(staging, 'package.json'));
  cpSync(join(here, 'toolchain/package-lock.json'), join(staging, 'package-lock.json'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const args = ['ci', '--cache', join(cache, 'npm'), '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
  try {
    // npm's output goes to stderr: stdout stays one line.
    execFileSync(npm, args, { cwd: staging, stdio: ['ignore', 2, 2] });
  } catch (e) {
    fail(`npm ci failed (${e.message}): it needs npm and, the first time, the npm registry`);
  }
  writeFileSync(join(staging, 'node_modules/.funnel-installed'), `${key}\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(staging, dir);
  return dir;
}

/**
 * TypeScript declarations of the WIT for the plugin's side (jco's guest types), adjusted to how
 * componentize-qjs hands values over: 64-bit integers as `number`, an absent `option` as `null`.
 */
async function writeTypes(tools) {
  const bindgen = join(tools, 'node_modules/@bytecodealliance/jco-transpile/vendor/js-component-bindgen-component.js');
  const { $init, generateTypes } = await import(pathToFileURL(bindgen).href);
  await $init;
  const files = generateTypes('funnel', {
    wit: { tag: 'source', val: readFileSync(join(wit, 'funnel.wit'), 'utf8') },
    world: 'funnel',
    tlaCompat: false,
    features: { tag: 'list', val: [] },
    guest: true,
  });
  for (const [name, bytes] of files) {
    const text = new TextDecoder()
      .decode(bytes)
      .replace(/\bbigint\b/g, 'number')
      .replace(/^(\s+)([A-Za-z0-9_]+)\?: (.+),$/gm, '$1$2: $3 | null,')
      .replace(/ \| undefined\b/g, ' | null');
    const path = join(here, 'types', name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
}

const tools = toolchain();
await writeTypes(tools);
if (process.argv[2] === '--types') {
  say(`wrote ${join(here, 'types')}`);
  process.exit(0);
}

const out = process.argv[2] ? (isAbsolute(process.argv[2]) ? process.argv[2] : join(here, process.argv[2])) : join(here, `build/${NAME}.wasm`);
const { componentize } = createRequire(import.meta.url)(join(tools, 'node_modules/componentize-qjs'));
let component;
try {
  ({ component } = await componentize({
    witPath: wit,
    jsSource: readFileSync(ENTRY, 'utf8'),
    jsPath: ENTRY,
    world: 'funnel',
    // The host links WASI granting nothing; the component-model async ABI is not used here.
    sync: true,
  }));
} catch (e) {
  fail(`componentize-qjs refused ${ENTRY}: ${e.message ?? e}`);
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, component);
process.stdout.write(`${out}\n`);
