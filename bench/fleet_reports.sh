#!/bin/bash
# Edge reports at fleet scale: one wharf-core (--auth token) taking a report per second
# from each of EDGES (1000) simulated edges while a client pulls, and the fleet usage
# query over DAYS (30) of history of those edges.
#  1. seed:  wharf-fleetbench seed writes DAYS of hourly reports of EDGES edges (REPOS
#            repositories each) into <data_dir>/usage.lmdb in process, through the
#            store's own ingest path on a fake clock (no HTTP backdoor); the file's size
#            per edge per day is the storage figure (every hourly and day row kept).
#  2. the core starts on that data directory; the EDGES edges are added and registered
#     through the admin API (wharf-fleetbench register); a small image is pushed.
#  3. query: GET /api/v1/fleet/usage?from=30d&by=day (and by=edge, and the edge list with
#            its status) QUERY_RUNS (10) times each, idle: min, median, max (curl time_total).
#  4. load:  wharf-fleetbench load plays the EDGES edges, each POSTing a report every
#            second over its own connection for LOAD_SECONDS (60), the fleet query running
#            every 2 s; twice: alone, then while wharf-loadgen pulls the image's manifest
#            as fast as it can (PULL_CONNECTIONS, 1: one client). Report POST latency (p50/p99/max), the
#            core's CPU (utime+stime from /proc over the phase, in % of one core: the first
#            phase is the cost of the reports), pull latency, the query's times meanwhile,
#            and usage.lmdb's growth.
#
#   bench/fleet_reports.sh [BUILD_DIR]   (default: build; needs wharf-core, wharf-fleetbench,
#                                         wharf-loadgen; curl, python3, sha256sum)
#
# Environment: EDGES (1000), DAYS (30), REPOS (5), LOAD_SECONDS (60), QUERY_RUNS (10),
# PULL_CONNECTIONS (1), REGISTER_SECONDS (60), KEEP=1 keeps the work directory (and prints its path).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
edges=${EDGES:-1000}
days=${DAYS:-30}
repos=${REPOS:-5}
secs=${LOAD_SECONDS:-60}
runs=${QUERY_RUNS:-10}
pull_conns=${PULL_CONNECTIONS:-1}
register_secs=${REGISTER_SECONDS:-60}
for c in curl python3 sha256sum; do
  command -v $c >/dev/null || { echo "bench: $c is missing" >&2; exit 2; }
done
for b in core/wharf-core bench/wharf-fleetbench bench/wharf-loadgen; do
  [ -x "$build/$b" ] || { echo "bench: $build/$b is missing (build wharf-core wharf-fleetbench wharf-loadgen)" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d /tmp/wharf-fleet-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work/wharf"

# --- 1. seed ------------------------------------------------------------------------------
echo "bench: seeding $days days of $edges edges x $repos repositories..." >&2
"$build/bench/wharf-fleetbench" seed --data-dir "$work/wharf" --edges "$edges" --days "$days" --repos "$repos" \
  >"$work/seed.json"

# --- 2. the core, the edges, an image -----------------------------------------------------
password=fleet-bench-password
WHARF_ADMIN_PASSWORD=$password "$build/core/wharf-core" --listen 127.0.0.1:0 --port-file "$work/port" \
  --data-dir "$work/wharf" --auth token --log-level warn --access-log false --token-ttl 1h >"$work/wharf.log" 2>&1 &
core_pid=$!
pids+=("$core_pid")
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "bench: wharf-core did not start:" >&2; cat "$work/wharf.log" >&2; exit 1; }
port=$(cat "$work/port")
base=http://127.0.0.1:$port
for _ in $(seq 200); do curl -s -o /dev/null "$base/v2/" && break; sleep 0.05; done
echo "bench: registering $edges edges over $register_secs s..." >&2
# Paced over a minute (REGISTER_SECONDS): each edge's last_seen write then falls in its
# own second of the minute, as in a fleet registered over time (REGISTER_SECONDS=0 shows
# all of them at once: a second of slow answers every minute).
"$build/bench/wharf-fleetbench" register --port "$port" --password "$password" --edges "$edges" \
  --over-seconds "$register_secs" --out "$work/credentials.txt"

token=$(curl -fsS -u "admin:$password" "$base/auth/token?service=wharf&scope=repository:bench/small:pull,push" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
bearer="Authorization: Bearer $token"
upload() { # data digest
  local loc
  loc=$(curl -fsS -o /dev/null -D - -H "$bearer" -X POST "$base/v2/bench/small/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in http*) ;; *) loc="$base$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$2" ;; *) loc="$loc?digest=$2" ;; esac
  printf '%s' "$1" | curl -fsS -o /dev/null -H "$bearer" -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @- "$loc"
}
cfg='{"architecture":"amd64","os":"linux"}'
layer="small layer bytes"
cd_=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
ld=sha256:$(printf '%s' "$layer" | sha256sum | cut -d' ' -f1)
upload "$cfg" "$cd_"
upload "$layer" "$ld"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd_\",\"size\":${#cfg}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ld\",\"size\":${#layer}}]}"
printf '%s' "$manifest" | curl -fsS -o /dev/null -H "$bearer" -X PUT \
  -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @- "$base/v2/bench/small/manifests/v1"

# --- 3. queries, idle -------------------------------------------------------------------------
timed() { # path -> one curl time_total in ms per line, $runs lines
  for _ in $(seq "$runs"); do
    curl -fsS -o "$work/last.json" -w '%{time_total}\n' -u "admin:$password" "$base$1" |
      awk '{printf "%.1f\n", $1 * 1000}'
  done
}
stats() { # file of numbers -> "min median max"
  sort -n "$1" | awk '{v[NR] = $1} END {if (NR == 0) {print "- - -"} else {printf "%s %s %s", v[1], v[int((NR + 1) / 2)], v[NR]}}'
}
# The first call pays the admin password's KDF once; the core caches it.
curl -fsS -o /dev/null -u "admin:$password" "$base/api/v1/fleet/usage?from=1h"
timed "/api/v1/fleet/usage?from=30d&by=day" >"$work/q_day.txt"
python3 - "$work/last.json" "$edges" "$days" <<'EOF' >"$work/q_check.txt"
import json, sys
d = json.load(open(sys.argv[1]))
print("rows=%d served_bytes=%d" % (len(d["rows"]), d["totals"]["served_bytes"]))
EOF
timed "/api/v1/fleet/usage?from=30d&by=edge" >"$work/q_edge.txt"
timed "/api/v1/edges" >"$work/q_list.txt"

# --- 4. load ------------------------------------------------------------------------------
cpu_ms() { # utime + stime of the core in ms
  awk -v t="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / t}' /proc/$core_pid/stat
}
phase() { # name pulls(0|1): reports for $secs s (with a pulling client when pulls=1), the
          # fleet query every 2 s; files name.load.json, name.pull.json, name.q.txt, name.cpu
  local name=$1 pulls=$2 cpu0 cpu1 t0 t1 pull_pid q_pid
  cpu0=$(cpu_ms)
  t0=$(date +%s.%N)
  if [ "$pulls" = 1 ]; then
    "$build/bench/wharf-loadgen" --connections "$pull_conns" --seconds "$secs" \
      --url "$base/v2/bench/small/manifests/v1" --header 'Accept: application/vnd.oci.image.manifest.v1+json' \
      --header "$bearer" >"$work/$name.pull.json" &
    pull_pid=$!
    pids+=("$pull_pid")
  fi
  ( end=$(( $(date +%s) + secs )); while [ "$(date +%s)" -lt "$end" ]; do
      curl -fsS -o /dev/null -w '%{time_total}\n' -u "admin:$password" "$base/api/v1/fleet/usage?from=30d&by=day" |
        awk '{printf "%.1f\n", $1 * 1000}'
      sleep 2
    done ) >"$work/$name.q.txt" &
  q_pid=$!
  pids+=("$q_pid")
  "$build/bench/wharf-fleetbench" load --port "$port" --credentials "$work/credentials.txt" --seconds "$secs" \
    --repos "$repos" >"$work/$name.load.json"
  if [ "$pulls" = 1 ]; then wait "$pull_pid" || true; fi
  wait "$q_pid" || true
  t1=$(date +%s.%N)
  cpu1=$(cpu_ms)
  echo "$cpu0 $cpu1 $t0 $t1" >"$work/$name.cpu"
}
size0=$(stat -c %s "$work/wharf/usage.lmdb")
echo "bench: $edges edges reporting every second for $secs s, alone..." >&2
phase alone 0
echo "bench: ... and again while a client pulls" >&2
phase pulls 1
size1=$(stat -c %s "$work/wharf/usage.lmdb")
curl -fsS "$base/metrics" | grep -E '^wharf_usage_(reports_total|last_batch_size)|^wharf_usage_commit_seconds_(sum|count)' \
  >"$work/metrics.txt" || true

# --- summary -------------------------------------------------------------------------------
python3 - "$work" "$size0" "$size1" "$(stats "$work/q_day.txt")" "$(stats "$work/q_edge.txt")" \
  "$(stats "$work/q_list.txt")" "$(stats "$work/alone.q.txt")" "$(stats "$work/pulls.q.txt")" "$pull_conns" <<'EOF'
import json, sys
work, size0, size1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
q_day, q_edge, q_list, q_alone, q_pulls, pull_conns = sys.argv[4:10]
seed = json.load(open(work + "/seed.json"))
check = open(work + "/q_check.txt").read().strip()
print("Seed: %d edges x %d days x %d repositories: %d hourly reports in %.1f s (%.0f/s, in process)" % (
    seed["edges"], seed["days"], seed["repos_per_edge"], seed["reports"], seed["seconds"], seed["reports_per_second"]))
print("  usage.lmdb %.1f MiB = %.0f bytes per edge per day (every hourly and day row kept)" % (
    seed["usage_lmdb_bytes"] / 2**20, seed["bytes_per_edge_day"]))
print("  the store's fleet query by day over the seeded days, in process: %.1f ms (%d rows)" % (
    seed["store_query_day_ms"], seed["store_query_rows"]))
print("Fleet query, idle (ms, min median max over runs):")
print("  GET /api/v1/fleet/usage?from=30d&by=day   %s   (%s)" % (q_day, check))
print("  GET /api/v1/fleet/usage?from=30d&by=edge  %s" % q_edge)
print("  GET /api/v1/edges (with status)           %s" % q_list)
for name, title, q in (("alone", "reports alone", q_alone),
                       ("pulls", "reports while %s connections pull a manifest" % pull_conns, q_pulls)):
    load = json.load(open("%s/%s.load.json" % (work, name)))
    cpu0, cpu1, t0, t1 = open("%s/%s.cpu" % (work, name)).read().split()
    wall = float(t1) - float(t0)
    cpu = (int(cpu1) - int(cpu0)) / 1000
    print("Load, %s: %d edges, one report each per %d ms, %.0f s" % (title, load["edges"], load["interval_ms"], load["seconds"]))
    print("  reports: sent %d, 200 %d, errors %d, unanswered %d, skipped (previous not answered) %d, %.0f/s" % (
        load["sent"], load["ok"], load["errors"], load["unanswered"], load["skipped_late"], load["reports_per_second"]))
    print("  report POST latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f" % (
        load["p50_ms"], load["p90_ms"], load["p99_ms"], load["p999_ms"], load["max_ms"]))
    print("  core CPU: %.1f s over %.1f s = %.0f%% of one core" % (cpu, wall, cpu * 100 / wall))
    if name == "pulls":
        pull = json.load(open(work + "/pulls.pull.json"))
        print("  pulls: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %s" % (
            pull.get("rps", 0), pull.get("p50_ms", 0), pull.get("p99_ms", 0), pull.get("errors", "?")))
    print("  fleet query by=day meanwhile (ms, min median max): %s" % q)
print("usage.lmdb: %d -> %d bytes (+%d) over both phases" % (size0, size1, size1 - size0))
print(open(work + "/metrics.txt").read().strip())
EOF
