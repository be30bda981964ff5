#!/usr/bin/env bash
# Upload the Python and JS examples (built by `cargo test` under the target dir) to a release
# `funnel serve` while a Rust plugin's events flow: each answers 202 in under a second, both become
# `ready`, and every event is handled meanwhile. Run after `cargo test` and
# `cargo build --release -p funnel-host --bin funnel`: bash .ci/upload-check.sh
set -euo pipefail
T=${CARGO_TARGET_DIR:-$HOME/.cache/funnel/target}; BIN=$T/release/funnel
D=$(mktemp -d); cd "$D"
FUNNEL_ADMIN_TOKEN=adm FUNNEL_PLATFORM_TOKEN=plat FUNNEL_PLATFORM_SECRET=s FUNNEL_LISTEN=127.0.0.1:18089 \
  FUNNEL_DATABASE_URL=sqlite:$D/f.db RUST_LOG=warn "$BIN" serve > serve.log 2>&1 &
PID=$!; trap 'kill $PID' EXIT
for i in $(seq 1 50); do curl -sf localhost:18089/healthz >/dev/null && break; sleep 0.2; done
P=$(curl -s -XPOST localhost:18089/v1/admin/producers -H 'Authorization: Bearer adm' -d '{"name":"L"}')
KEY=$(echo "$P" | python3 -c 'import sys,json;print(json.load(sys.stdin)["api_key"])')
PROD=$(echo "$P" | python3 -c 'import sys,json;print(json.load(sys.stdin)["id"])')
curl -s -XPUT localhost:18089/v1/bindings -H "Authorization: Bearer $KEY" -d '{"plugin":"four-emails","config":{"emails":[{"after":"20m","subject":"Volte","html":"<p>{{checkout_url}}</p>"}]}}' >/dev/null
( for i in $(seq 1 400); do curl -s -o /dev/null -XPOST localhost:18089/v1/events -H 'Authorization: Bearer plat' -d '{"id":"e'$i'","type":"checkout.updated","occurred_at":"2026-11-22T10:00:00Z","producer_id":"'$PROD'","checkout":{"id":"c'$i'","email":"l'$i'@example.com","price":{"amount_cents":9700,"currency":"BRL"}}}'; sleep 0.02; done ) &
POSTER=$!
for f in python-plugin/sms_first_py.wasm js-plugin/sms_first_js.wasm; do
  W=$T/tmp/$f
  curl -s -o /tmp/up.json -w "$f ($(stat -c %s $W) bytes): HTTP %{http_code} in %{time_total} s\n" -XPOST "localhost:18089/v1/plugins" -H "Authorization: Bearer $KEY" --data-binary @"$W"
  cat /tmp/up.json; echo
done
START=$(date +%s.%N)
for i in $(seq 1 120); do
  S=$(curl -s localhost:18089/v1/plugins -H "Authorization: Bearer $KEY" | python3 -c 'import sys,json;print(" ".join(str(p.get("name") or p.get("sha256","")[:8])+":"+p.get("status","?") for p in json.load(sys.stdin)["plugins"] if not p.get("builtin")))')
  case "$S" in *compiling*) sleep 0.5;; *) break;; esac
done
echo "ready after $(python3 -c "print(round($(date +%s.%N)-$START,1))") s more: $S"
wait $POSTER
sleep 1
curl -s "localhost:18089/v1/leads?limit=500" -H "Authorization: Bearer $KEY" | python3 -c 'import sys,json;print("leads handled while uploading:", len(json.load(sys.stdin)["leads"]))'
