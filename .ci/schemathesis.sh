#!/usr/bin/env bash
# API fuzzer: schemathesis against a real `funnel serve` (SQLite, in a temp dir) and its own
# /openapi.json, with valid credentials for each role, a bounded number of examples per
# operation. Checks: no 5xx (not_a_server_error) and every response as documented
# (response_schema_conformance). Prints the operations tested and the 5xx count; exits non-zero
# on any failure.
#
# Run alone: bash .ci/schemathesis.sh   (builds nothing: uses $FUNNEL_BIN, or the debug binary
# that `cargo test` left in $CARGO_TARGET_DIR). Knobs: FUNNEL_SCHEMATHESIS_EXAMPLES (default 20
# per operation), FUNNEL_SCHEMATHESIS_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV="$HOME/.cache/funnel/venv"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="${FUNNEL_BIN:-$TARGET/debug/funnel}"
EXAMPLES="${FUNNEL_SCHEMATHESIS_EXAMPLES:-20}"
SEED="${FUNNEL_SCHEMATHESIS_SEED:-1}"
[ -x "$BIN" ] || { echo "no funnel binary at $BIN: run cargo build -p funnel-host (or set FUNNEL_BIN)" >&2; exit 1; }

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK="$(mktemp -d)"
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  [ -n "${FUNNEL_SCHEMATHESIS_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN=st-admin PLATFORM=st-platform
(cd "$WORK" && exec env FUNNEL_DATABASE_URL="sqlite:$WORK/funnel.db" FUNNEL_ADMIN_TOKEN=$ADMIN \
  FUNNEL_PLATFORM_TOKEN=$PLATFORM FUNNEL_PLATFORM_SECRET=st-secret RUST_LOG=warn \
  "$BIN" serve --listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err") &
SERVE_PID=$!
BASE=""
for _ in $(seq 1 300); do
  BASE="$(sed -n 's/^funnel listening on \([^ ]*\).*/\1/p' "$WORK/serve.out" | head -1)"
  [ -n "$BASE" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.err" >&2; echo "funnel serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$BASE" ] || { echo "funnel serve did not start within 30 s" >&2; exit 1; }

# A producer and its key, created through the API (as a platform operator would).
PRODUCER_JSON="$(curl -sf -XPOST "$BASE/v1/admin/producers" -H "Authorization: Bearer $ADMIN" -d '{"name":"Loja"}')"
KEY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])' <<<"$PRODUCER_JSON")"

# One run per role: schemathesis sends one Authorization header to every operation it runs.
run() { # name, token, filters...
  local name=$1 token=$2
  shift 2
  echo "== schemathesis: $name operations"
  # From the temp dir: schemathesis keeps a `.schemathesis/` cache in its working directory.
  (cd "$WORK" && "$VENV/bin/schemathesis" run "$BASE/openapi.json" --no-color \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 --request-timeout 30 \
    --generation-database none --suppress-health-check all --generation-with-security-parameters false \
    --report ndjson --report-ndjson-path "$WORK/$name.ndjson" \
    "$@") >"$WORK/$name.log" 2>&1 && status=0 || status=$?
  tail -n 40 "$WORK/$name.log"
  return $status
}

failed=0
run producer "$KEY" --exclude-path-regex '^/v1/(events|admin)' || failed=1
run platform "$PLATFORM" --include-path-regex '^/v1/events' || failed=1
run admin "$ADMIN" --include-path-regex '^/v1/admin' || failed=1

# Figures from the reports: operations tested, requests made, 5xx answers.
python3 - "$WORK" <<'EOF'
import json, pathlib, sys
ops, requests, server_errors = set(), 0, 0
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.ndjson")):
    for line in report.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished:
            continue
        interactions = finished["recorder"].get("interactions", {})
        if interactions and finished["recorder"]["label"].split(" ")[0] in ("GET", "POST", "PUT", "DELETE"):
            ops.add(finished["recorder"]["label"])
        for interaction in interactions.values():
            status = (interaction.get("response") or {}).get("status_code", 0)
            requests += 1
            server_errors += status >= 500
print(json.dumps({"bench": "schemathesis", "operations_tested": len(ops), "requests": requests,
                  "server_errors_5xx": server_errors}))
EOF
if [ "$failed" != 0 ]; then
  echo "schemathesis found failures (logs above); serve's stderr:" >&2
  tail -n 20 "$WORK/serve.err" >&2
  exit 1
fi
