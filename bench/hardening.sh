#!/bin/bash
# Hardening bench: the core's latency and memory for normal pulls while attackers hold
# connections open. One wharf-core (--auth none) with a small image bench/small:v1; then
#  1. alone:        CONNECTIONS (64) keep-alive clients GET the manifest by tag for
#                   SECONDS_PER_PHASE (wharf-loadgen): p50, p99, req/s;
#  2. under attack: the same, while wharf-slowclients holds IDLE (5000) connections that
#                   send nothing and SLOW (1000) that send a request line and then one
#                   header byte every SLOW_INTERVAL seconds, never ending the headers
#                   (both reconnect when the core closes them). The clients start once all
#                   the attackers are open at the same time (or after READY_WAIT seconds).
# The core's RSS is sampled from /proc/PID/status during each phase (VmHWM reset before it
# through clear_refs; the sampled VmRSS maximum as well) with its open descriptors. Prints
# the two side by side, the p99 ratio against the target (<= 2.0x), what the core did to
# the attackers (closes, 408s, their lifetimes), the core's own wharf_http_timeouts_total
# over the phase, and its RSS before, with all attackers open, and after they left.
#
#   bench/hardening.sh [BUILD_DIR]   (default: build; needs wharf-core, wharf-loadgen and
#                                     wharf-slowclients; curl, python3)
#
# Environment: SECONDS_PER_PHASE (20), CONNECTIONS (64), LOADGEN_THREADS (1), IDLE (5000),
# SLOW (1000), SLOW_INTERVAL (2), READY_WAIT (60), NOFILE (65536: ulimit -n for the core
# and the clients, lowered to the hard limit if above it), CORE_ARGS (extra wharf-core
# flags, e.g. CORE_ARGS='--header-timeout 10s --idle-timeout 10s'), KEEP=1 keeps the work
# directory (the core's log, the attackers' JSON) and prints its path.
#
# The core only closes an attacker after its timeouts (idle_timeout, header_timeout, ...):
# with phases shorter than those, the attack phase shows the cost of holding the
# connections, not of the churn; shorten the timeouts with CORE_ARGS to see both.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
secs=${SECONDS_PER_PHASE:-20}
conns=${CONNECTIONS:-64}
lg_threads=${LOADGEN_THREADS:-1}
idle=${IDLE:-5000}
slow=${SLOW:-1000}
interval=${SLOW_INTERVAL:-2}
ready_wait=${READY_WAIT:-60}
want_nofile=${NOFILE:-65536}
core_args=${CORE_ARGS:-}
for c in curl python3 sha256sum; do
  command -v $c >/dev/null || { echo "bench: $c is missing" >&2; exit 2; }
done
for b in core/wharf-core bench/wharf-loadgen bench/wharf-slowclients; do
  [ -x "$build/$b" ] || { echo "bench: $build/$b is missing (build wharf-core wharf-loadgen wharf-slowclients)" >&2; exit 2; }
done

# Descriptors: the core holds every attacker plus the clients; inherited by all below.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_nofile" ]; then want_nofile=$hard; fi
ulimit -n "$want_nofile"
nofile=$(ulimit -n)
need=$((idle + slow + conns + 256))
if [ "$nofile" -lt "$need" ]; then
  echo "bench: WARNING: ulimit -n is $nofile (hard limit $hard), below the $need descriptors the core needs" >&2
fi

work=$(mktemp -d /tmp/wharf-hardening-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the core --------------------------------------------------------------------------
# shellcheck disable=SC2086  # CORE_ARGS is a list of flags
"$build/core/wharf-core" --listen 127.0.0.1:0 --port-file "$work/port" --data-dir "$work/wharf" --auth none \
  --log-level warn --access-log false $core_args >"$work/wharf.log" 2>&1 &
core_pid=$!
pids+=("$core_pid")
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "bench: wharf-core did not start:" >&2; cat "$work/wharf.log" >&2; exit 1; }
port=$(cat "$work/port")
base=http://127.0.0.1:$port
for _ in $(seq 200); do curl -s -o /dev/null "$base/v2/" && break; sleep 0.05; done

# --- content: a small image, as bench/run.sh pushes it -----------------------------------
upload() { # data digest
  local loc
  loc=$(curl -fsS -o /dev/null -D - -X POST "$base/v2/bench/small/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in http*) ;; *) loc="$base$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$2" ;; *) loc="$loc?digest=$2" ;; esac
  printf '%s' "$1" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @- "$loc"
}
cfg='{"architecture":"amd64","os":"linux"}'
layer="small layer bytes"
cd_=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
ld=sha256:$(printf '%s' "$layer" | sha256sum | cut -d' ' -f1)
upload "$cfg" "$cd_"
upload "$layer" "$ld"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd_\",\"size\":${#cfg}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ld\",\"size\":${#layer}}]}"
printf '%s' "$manifest" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @- "$base/v2/bench/small/manifests/v1"
curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$base/v2/bench/small/manifests/v1"

# --- measuring -------------------------------------------------------------------------
status_kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$core_pid/status; }
fds() { find /proc/$core_pid/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# The core's own count of connections it closed for a timeout (0 if it has no such metric).
timeouts() { curl -s "$base/metrics" | awk '/^wharf_http_timeouts_total/ {s += $NF} END {printf "%d", s}'; }
sampler() { # out: keeps "max VmRSS kB, max open fds" in the file until killed
  local max_rss=0 max_fd=0 r f
  while kill -0 $core_pid 2>/dev/null; do
    r=$(status_kb VmRSS); f=$(fds)
    [ "${r:-0}" -gt "$max_rss" ] && max_rss=$r
    [ "${f:-0}" -gt "$max_fd" ] && max_fd=$f
    echo "$max_rss $max_fd" >"$1.tmp" && mv "$1.tmp" "$1"
    sleep 0.2
  done
}
phase_start() { # name
  echo 5 >/proc/$core_pid/clear_refs 2>/dev/null || echo "bench: could not reset VmHWM" >&2
  sampler "$work/$1.rss" &
  sampler_pid=$!
  pids+=("$sampler_pid")
  timeouts >"$work/$1.timeouts0"
}
phase_end() { # name -> files name.hwm, name.timeouts
  sleep 0.3  # one more sample
  kill $sampler_pid 2>/dev/null || true
  wait $sampler_pid 2>/dev/null || true
  status_kb VmHWM >"$work/$1.hwm"
  echo $(( $(timeouts) - $(cat "$work/$1.timeouts0") )) >"$work/$1.timeouts"
}
load() {
  "$build/bench/wharf-loadgen" --connections "$conns" --threads "$lg_threads" --seconds "$secs" \
    --url "$base/v2/bench/small/manifests/v1" --header 'Accept: application/vnd.oci.image.manifest.v1+json'
}

rss_start=$(status_kb VmRSS)
echo "bench: alone: $conns clients x ${secs}s" >&2
phase_start alone
alone=$(load)
phase_end alone

echo "bench: under attack: $idle idle + $slow slow-header connections (a byte every ${interval}s), then $conns clients x ${secs}s" >&2
rss_before_attack=$(status_kb VmRSS)
phase_start attack
"$build/bench/wharf-slowclients" --target "127.0.0.1:$port" --idle "$idle" --slow "$slow" --interval "$interval" \
  --seconds 86400 --ready-file "$work/ready" >"$work/attack.json" 2>"$work/attack.log" &
attack_pid=$!
pids+=("$attack_pid")
t0=$(date +%s.%N)
for _ in $(seq $((ready_wait * 10))); do
  [ -e "$work/ready" ] && break
  kill -0 $attack_pid 2>/dev/null || break
  sleep 0.1
done
ready_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
if [ -e "$work/ready" ]; then
  echo "bench: all attackers open after ${ready_s}s" >&2
else
  echo "bench: WARNING: the attackers were not all open at once after ${ready_s}s; measuring anyway" >&2
fi
rss_all_open=$(status_kb VmRSS)
fds_all_open=$(fds)
attacked=$(load)
kill -TERM $attack_pid 2>/dev/null || true
wait $attack_pid 2>/dev/null || true
phase_end attack
sleep 2
rss_after=$(status_kb VmRSS)
fds_after=$(fds)

# --- report ----------------------------------------------------------------------------
python3 - "$alone" "$attacked" "$work" "$idle" "$slow" "$interval" "$conns" "$secs" "$nofile" "$rss_start" \
  "$rss_before_attack" "$rss_all_open" "$fds_all_open" "$rss_after" "$fds_after" "$ready_s" "$core_args" <<'PY'
import json, os, sys
(alone, attacked, work, idle, slow, interval, conns, secs, nofile, rss_start, rss_before, rss_open, fds_open,
 rss_after, fds_after, ready_s, core_args) = sys.argv[1:]
a, b = json.loads(alone), json.loads(attacked)
def read(name):
    with open(os.path.join(work, name)) as f:
        return f.read().strip()
def rss(phase):
    mx, fd = read(phase + ".rss").split()
    return int(read(phase + ".hwm")) / 1024, int(mx) / 1024, int(fd)
try:
    atk = json.loads(read("attack.json"))
except Exception:
    atk = None
mib = lambda kb: int(kb) / 1024
ra, rb = rss("alone"), rss("attack")
print()
print(f"Wharf hardening bench ({os.popen('date -u +%Y-%m-%dT%H:%MZ').read().strip()}, {os.cpu_count()} cores, "
      f"{conns} clients x {secs}s GET manifest, attack {idle} idle + {slow} slow-header (a byte / {interval}s), "
      f"ulimit -n {nofile}" + (f", core args: {core_args}" if core_args else "") + ")")
row = "{:<34} {:>14} {:>14} {:>18}"
print(row.format("measure", "alone", "under attack", "ratio"))
def ratio(x, y):
    return f"{x / y:.2f}x" if y else "n/a"
print(row.format("requests/s", f"{a['rps']:.0f}", f"{b['rps']:.0f}", ratio(b['rps'], a['rps'])))
print(row.format("p50 latency (ms)", f"{a['p50_ms']:.2f}", f"{b['p50_ms']:.2f}", ratio(b['p50_ms'], a['p50_ms'])))
p99r = b['p99_ms'] / a['p99_ms'] if a['p99_ms'] else float('inf')
verdict = "MET" if p99r <= 2.0 else "MISS"
print(row.format("p99 latency (ms)", f"{a['p99_ms']:.2f}", f"{b['p99_ms']:.2f}", f"{p99r:.2f}x <=2.0 {verdict}"))
print(row.format("max latency (ms)", f"{a['max_ms']:.2f}", f"{b['max_ms']:.2f}", ""))
print(row.format("errors / non-2xx", f"{a['errors']} / {a['non_2xx']}", f"{b['errors']} / {b['non_2xx']}", ""))
print(row.format("core peak RSS (MiB, VmHWM)", f"{ra[0]:.1f}", f"{rb[0]:.1f}", ratio(rb[0], ra[0])))
print(row.format("core max sampled RSS (MiB)", f"{ra[1]:.1f}", f"{rb[1]:.1f}", ""))
print(row.format("core max open fds", f"{ra[2]}", f"{rb[2]}", ""))
print(row.format("core timeouts (wharf_http_timeouts)", read("alone.timeouts"), read("attack.timeouts"), ""))
print()
print(f"core RSS (MiB): start {mib(rss_start):.1f}; before the attack {mib(rss_before):.1f}; "
      f"all attackers open {mib(rss_open):.1f} ({fds_open} fds); 2 s after they left {mib(rss_after):.1f} ({fds_after} fds)")
held = int(idle) + int(slow)
if held:
    print(f"  per attacking connection while held: {(int(rss_open) - int(rss_before)) / held:.1f} KiB")
if atk is None:
    print("attackers: no report (see attack.log with KEEP=1)")
else:
    print(f"attackers ({atk['seconds']:.1f} s; all open at once: "
          + (f"after {atk['all_open_after_s']:.1f} s" if atk['all_open'] else "never") + "):")
    for kind in ("idle", "slow"):
        k = atk[kind]
        lt = k["lifetime"]
        other = {c: n for c, n in k["status"].items() if c != "408"}
        print(f"  {kind:<5} opened {k['opened']}, open at end {k['open_at_end']} (oldest {k['oldest_open_s']:.1f} s); "
              f"closed by the core {k['closed_by_server']}: 408 {k['got_408']}, plain close {k['plain_close']}, "
              f"reset {k['reset']}" + (f", other responses {other}" if other else "")
              + (f"; lifetime p50 {lt['p50_s']:.1f} s, max {lt['max_s']:.1f} s" if lt["count"] else ""))
    if atk["connect_errors"] or atk["socket_errors"]:
        print(f"  connect errors {atk['connect_errors']}, socket errors {atk['socket_errors']}")
    if not atk["nofile"]["enough"]:
        print(f"  WARNING: the attackers' RLIMIT_NOFILE {atk['nofile']['limit']} < {atk['nofile']['needed']}")
PY
