#!/usr/bin/env bash
# The web UI's page weight and render speed: imports 1 h of generated Dynamo-shaped data ending
# now, serves it with bench/web/dashboards/ (one dashboard of 20 timeseries panels over 1 h) and
# measures that dashboard's page in headless Chromium (bench/web/render.mjs, over the DevTools
# protocol). Prints the JSON of render.mjs and writes it to bench/out/web.json.
#
#   bench/web/run.sh [runs]        (default 7 runs; the first with an empty browser cache)
#
# Needs: chromium, node >= 20; EDGEPROM_BIN (default: the release binary, built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-7}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${EDGEPROM_BIN:-$TARGET/release/edgeprom}
if [ ! -x "$BIN" ]; then cargo build --release -p edgeprom; fi
WORK=$(mktemp -d /tmp/edgeprom-bench-web.XXXXXX)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" generate --out "$WORK/rec" --workers 4 --duration-seconds 3600 --seed 1 >/dev/null
"$BIN" replay --import --shift now --storage.tsdb.path "$WORK/data" "$WORK/rec" >/dev/null
printf 'global:\n  scrape_interval: 15s\n' >"$WORK/prometheus.yml"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --config.file "$WORK/prometheus.yml" --storage.tsdb.path "$WORK/data" \
  --web.listen-address "127.0.0.1:$PORT" --web.dashboards.dir bench/web/dashboards \
  2>"$WORK/edgeprom.log" &
PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/-/ready" >/dev/null && break
  sleep 0.2
done
mkdir -p bench/out
node --experimental-websocket bench/web/render.mjs chromium \
  "http://127.0.0.1:$PORT/dashboards?d=twenty-timeseries&refresh=off" "$RUNS" | tee bench/out/web.json
