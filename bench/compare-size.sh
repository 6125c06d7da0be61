#!/usr/bin/env bash
# Bytes per sample of one corpus in Prometheus (promtool backfill), VictoriaMetrics and edgeprom.
#
# Usage: bench/compare-size.sh CORPUS.om [WORKDIR]
#
# Installs nothing. It needs, on PATH:
#   promtool, victoria-metrics   apt-get install -y prometheus victoria-metrics
#   load-storage                 cargo build --release -p edgeprom-bench (or set LOAD_STORAGE=path)
#   curl, awk, du
# Everything listens on 127.0.0.1 only; every wait is bounded.
#
# Prints a markdown table: samples each store reports against the corpus's, and bytes/sample.
# Sizes are allocated bytes (du --block-size=1), which is what a disk fills with:
#   - Prometheus: the backfilled block directory (index + chunks + meta), no WAL.
#   - VictoriaMetrics: data/ + indexdb/ after force_flush, force_merge and a clean stop
#     (its cache/ directory, written at shutdown, is reported apart).
#   - edgeprom: the whole data dir as load-storage leaves it (head flushed to blocks, WAL checkpointed).
set -euo pipefail

corpus=${1:?usage: compare-size.sh CORPUS.om [WORKDIR]}
work=${2:-$(mktemp -d /tmp/edgeprom-compare.XXXXXX)}
load_storage=${LOAD_STORAGE:-load-storage}
vm_port=${VM_PORT:-18428}
vm_url="http://127.0.0.1:${vm_port}"
mkdir -p "$work"

for tool in promtool victoria-metrics curl awk du "$load_storage"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (see the header of $0)" >&2; exit 1; }
done

bytes() { du -s --block-size=1 "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
# Samples in the corpus: every line that is not a comment.
expected=$(grep -vc '^#' "$corpus")
echo "corpus: $corpus, $expected samples, $(bytes "$corpus") bytes" >&2

# --- Prometheus -------------------------------------------------------------------------------
prom_dir="$work/prometheus"
rm -rf "$prom_dir"
start=$(date +%s.%N)
promtool tsdb create-blocks-from openmetrics "$corpus" "$prom_dir" >"$work/promtool.log" 2>&1
prom_secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
# `tsdb list` prints one row per block; NUM SAMPLES is the 5th column.
prom_samples=$(promtool tsdb list "$prom_dir" | awk 'NR > 1 {s += $5} END {print s + 0}')
prom_bytes=$(bytes "$prom_dir")

# --- VictoriaMetrics --------------------------------------------------------------------------
vm_dir="$work/victoria-metrics"
rm -rf "$vm_dir"
victoria-metrics -storageDataPath "$vm_dir" -httpListenAddr "127.0.0.1:${vm_port}" \
  -retentionPeriod 100y -search.maxUniqueTimeseries 10000000 >"$work/vm.log" 2>&1 &
vm_pid=$!
trap 'kill "$vm_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "$vm_url/health" >/dev/null && break
  sleep 0.2
done
curl -sf "$vm_url/health" >/dev/null || { echo "victoria-metrics did not start; see $work/vm.log" >&2; exit 1; }
start=$(date +%s.%N)
# /api/v1/import/prometheus reads the Prometheus text format, whose timestamps are integer
# milliseconds; the corpus is OpenMetrics with whole seconds. Comments (# TYPE, # EOF) are dropped.
# `-T -` streams the body chunked: `--data-binary @-` would hold the whole corpus in memory.
awk '/^#/ {next} {$NF = $NF "000"; print}' "$corpus" |
  curl -sf --max-time 3600 -X POST -T - "$vm_url/api/v1/import/prometheus"
# force_flush makes buffered rows searchable and writes them to parts; force_merge merges each
# partition into as few parts as it can (docs: "Forced merge").
curl -sf --max-time 60 "$vm_url/internal/force_flush" >/dev/null
curl -sf --max-time 3600 "$vm_url/internal/force_merge" >/dev/null
for _ in $(seq 1 600); do
  active=$(curl -sf "$vm_url/metrics" | awk '/^vm_active_merges/ {s += $2} END {print s + 0}')
  [ "$active" = 0 ] && break
  sleep 1
done
last_ts=$(awk '!/^#/ {t = $NF} END {print t + 1}' "$corpus")
vm_samples=$(curl -sf --max-time 600 "$vm_url/api/v1/query" \
  --data-urlencode 'query=sum(count_over_time({__name__=~".+"}[100d]))' \
  --data-urlencode "time=$last_ts" |
  sed -n 's/.*"value":\[[^,]*,"\([0-9]*\)"\].*/\1/p')
vm_secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
kill -INT "$vm_pid"
for _ in $(seq 1 120); do
  kill -0 "$vm_pid" 2>/dev/null || break
  sleep 0.5
done
trap - EXIT
vm_bytes=$(bytes "$vm_dir/data" "$vm_dir/indexdb")
vm_cache=$(bytes "$vm_dir/cache")

# --- edgeprom ---------------------------------------------------------------------------------
ep_dir="$work/edgeprom"
rm -rf "$ep_dir"
start=$(date +%s.%N)
"$load_storage" --corpus "$corpus" --storage.tsdb.path "$ep_dir" >"$work/load-storage.txt"
ep_secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
ep_samples=$(awk '$1 == "samples_appended" {print $2}' "$work/load-storage.txt")
ep_bytes=$(bytes "$ep_dir")
ep_wal=$(bytes "$ep_dir/wal")
ep_chunks=$(bytes "$ep_dir/chunks_head")

row() { # name samples bytes seconds note
  awk -v n="$1" -v s="$2" -v b="$3" -v e="$expected" -v t="$4" -v note="$5" 'BEGIN {
    ok = (s == e) ? "ok" : "MISMATCH"
    printf "| %s | %d | %s | %d | %.3f | %s | %s |\n", n, s, ok, b, (s > 0 ? b / s : 0), t, note
  }'
}
echo
echo "| store | samples stored | vs corpus ($expected) | bytes | bytes/sample | load s | note |"
echo "|---|---|---|---|---|---|---|"
row "Prometheus $(promtool --version 2>&1 | awk 'NR == 1 {print $3}') (promtool backfill)" \
  "$prom_samples" "$prom_bytes" "$prom_secs" "block: index + chunks"
row "VictoriaMetrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo '?')" \
  "${vm_samples:-0}" "$vm_bytes" "$vm_secs" "data + indexdb after merge; cache/ $vm_cache B apart"
row "edgeprom (blocks)" "${ep_samples:-0}" "$ep_bytes" "$ep_secs" \
  "whole data dir: blocks + WAL $ep_wal B + head chunks $ep_chunks B (head flushed to blocks)"
echo
echo "work dir: $work" >&2
