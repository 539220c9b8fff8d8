#!/bin/bash
# Side-by-side benchmark of wharf-edge, the caching pull-through proxy, against the two
# references, in one run on this machine: nginx with proxy_cache and Debian's
# docker-registry (distribution 2.8) in proxy (pull-through cache) mode. All three cache
# the same upstream: one wharf-core with token auth, holding a BLOB_MB random blob and a
# 4 KiB blob in a public repository (bench/public) and, mounted, in a private one
# (bench/private). Prints the figures, the ratios edge/nginx and edge/docker-registry, and
# the product's targets with MET/MISS.
#
#   bench/edge.sh [BUILD_DIR]   (default: build; needs wharf-core, wharf-edge and
#                                wharf-loadgen built with -DWHARF_BENCH=ON; docker-registry,
#                                nginx, curl, python3)
#
# Environment: BLOB_MB (default 1024), SECONDS_PER_LOAD (10), CONNECTIONS (64),
# STREAMS (8: parallel pulls), ROUNDS (3: warm runs, best of), LOADGEN_THREADS (1),
# KEEP=1 keeps the work directory (logs of every server) and prints its path.
#
# What is measured, in order:
#  1. cold: STREAMS simultaneous pulls of the big blob through each proxy while its cache is
#     empty: aggregate MB/s, the GETs of that blob the core answered (its access log), and
#     the proxy's CPU time in the second after the last client finished (loadgen reads
#     /proc/PID/stat: "idle when the clients finish").
#  2. warm: the big blob with 1 stream and with STREAMS streams, then GETs of the 4 KiB
#     blob with CONNECTIONS keep-alive connections for SECONDS_PER_LOAD.
#  3. auth: the edge serving the 4 KiB blob of the private repository to an
#     administrator's token, against its anonymous token for the public repository.
#  Warm and auth runs are interleaved across the servers, ROUNDS times, and the best of
#  each is kept: the machine is shared.
#  4. the edge's peak RSS (VmHWM).
#
# Clients: the core (like Docker's registry) wants a bearer token on every /v2/ request,
# anonymous pulls of public repositories included: an anonymous client gets one from
# /auth/token without credentials. The cold and warm runs pull bench/public with such an
# anonymous token through all three proxies:
#  - the edge verifies it offline with the core's keys;
#  - nginx passes the client's Authorization header through to the core on a miss and
#    caches the blob under its URI alone (nginx ignores Authorization for caching). That
#    is only right because the repository is public: nginx cannot check a token, so in
#    front of private content it would serve the cache to anyone. It is the fastest
#    correct nginx set-up for public content, so the fair reference;
#  - docker-registry's proxy logs in to the core itself (proxy.username/password: an
#    administrator's personal access token) and serves its cache to anyone (it has no
#    auth of its own configured here); the clients' header is ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
blob_mb=${BLOB_MB:-1024}
load_s=${SECONDS_PER_LOAD:-10}
conns=${CONNECTIONS:-64}
streams=${STREAMS:-8}
rounds=${ROUNDS:-3}
lg_threads=${LOADGEN_THREADS:-1}
admin_pw=bench-admin-pw-$RANDOM$RANDOM
for c in docker-registry nginx curl python3 sha256sum; do
  command -v $c >/dev/null || { echo "bench: $c is missing (apt-get install docker-registry nginx curl python3)" >&2; exit 2; }
done
for b in core/wharf-core edge/wharf-edge bench/wharf-loadgen; do
  [ -x "$build/$b" ] || { echo "bench: $build/$b is missing (cmake -DWHARF_BENCH=ON, build wharf-core wharf-edge wharf-loadgen)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/wharf-edge-bench-XXXXXX)
chmod 755 "$work"  # nginx workers (an unprivileged user when run as root) write their cache here
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_until WHAT SECONDS PID CMD...: polls CMD until it succeeds; fails when PID dies or
# the deadline passes (polling, with a deadline; never a fixed sleep as synchronization).
wait_until() {
  local what=$1 secs=$2 pid=$3
  shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || die "$what: the process exited (logs in $work; KEEP=1 keeps them)"
    [ $SECONDS -lt $deadline ] || die "$what: not within ${secs}s (logs in $work; KEEP=1 keeps them)"
    sleep 0.05
  done
}
http_up() { curl -s -o /dev/null --max-time 2 "$1"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
field() { python3 -c "import json,sys; v=json.loads(sys.argv[1])['$2']; print(round(v, 2) if isinstance(v, float) else v)" "$1"; }

# --- the upstream: one wharf-core with token auth ---------------------------------------
WHARF_ADMIN_PASSWORD=$admin_pw "$build/core/wharf-core" --listen 127.0.0.1:0 --port-file "$work/core.port" \
  --data-dir "$work/core" --token-ttl 2h --log-level info >"$work/core.log" 2>&1 &
core_pid=$!; pids+=("$core_pid")
wait_until "wharf-core start" 30 $core_pid test -s "$work/core.port"
core_url=http://127.0.0.1:$(cat "$work/core.port")
wait_until "wharf-core at $core_url" 30 $core_pid http_up "$core_url/v2/"
service=$(curl -sS -o /dev/null -D - "$core_url/v2/" | tr -d '\r' |
  sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate:.*service="\([^"]*\)".*/\1/p')
[ -n "$service" ] || die "the core at $core_url does not challenge with a token service (auth must be token)"
api() { # method path [json]
  curl -fsS -u "admin:$admin_pw" -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$core_url/api/v1$2"
}
token() { # scope [curl credentials...]: a bearer token from the core's realm
  local scope=$1
  shift
  curl -fsS "$@" "$core_url/auth/token?service=$service&scope=$scope" | json token
}
api POST /repositories '{"name":"bench/public","public":true}' >/dev/null
api POST /repositories '{"name":"bench/private","public":false}' >/dev/null
# docker-registry logs in with this (a PAT costs the core one SHA-256; a password the KDF).
pat=$(api POST /users/admin/tokens '{"name":"docker-registry-proxy"}' | json secret)

say "generating a ${blob_mb} MiB blob and a 4 KiB blob"
head -c $((blob_mb << 20)) /dev/urandom >"$work/big"
head -c 4096 /dev/urandom >"$work/small"
big_size=$(stat -c %s "$work/big")
big=sha256:$(sha256sum "$work/big" | cut -d' ' -f1)
small=sha256:$(sha256sum "$work/small" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
config=sha256:$(sha256sum "$work/config" | cut -d' ' -f1)

say "pushing to the core (bench/public; mounted into bench/private)"
push_tok=$(token "repository:bench/public:pull,push&scope=repository:bench/private:pull,push" -u "admin:$admin_pw")
auth_push=(-H "Authorization: Bearer $push_tok")
for f in big small config; do
  d=${!f}
  # monolithic upload: POST ?digest= with the body, streamed from stdin (chunked): with
  # --data-binary @file curl would read it whole into memory, and -T FILE appends the file
  # name to a URL ending in /
  curl -fsS -o /dev/null "${auth_push[@]}" -X POST -H 'Content-Type: application/octet-stream' -T - \
    "$core_url/v2/bench/public/blobs/uploads/?digest=$d" <"$work/$f"
  curl -fsS -o /dev/null "${auth_push[@]}" -X POST "$core_url/v2/bench/private/blobs/uploads/?mount=$d&from=bench/public"
done
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":4096},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
  "$config" "$(stat -c %s "$work/config")" "$small" "$big" "$big_size")
for r in public private; do
  printf '%s' "$manifest" | curl -fsS -o /dev/null "${auth_push[@]}" -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @- "$core_url/v2/bench/$r/manifests/v1"
done
anon_tok=$(token repository:bench/public:pull)  # as an anonymous client gets it
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $anon_tok" \
  "$core_url/v2/bench/public/blobs/$small")" = 200 ] || die "the core refuses an anonymous pull of bench/public"

# --- the three proxies ------------------------------------------------------------------

# The edge's start-up: the one place that knows its flags. Sets edge_pid and edge_url.
#  - Edges up to a111b0a (the build this script was measured with): --upstream URL; the
#    edge reads the token realm from the core's /v2/ challenge and the keys from /auth/keys.
#  - Edges with registration (421afa8 on): an administrator creates the edge on the core
#    (POST /api/v1/edges {"name","site"}, as `wharfctl edge add` does) and gets a
#    single-use join token; the edge registers with it (--core URL --join-token T) and
#    keeps its credential, realm and keys in DATA_DIR/edge.json. Not yet run here.
# Which one is chosen by the binary's --help.
start_edge() { # data_dir
  local dir=$1 join how
  if "$build/edge/wharf-edge" --help | grep -q -- '--join-token'; then
    join=$(api POST /edges "{\"name\":\"bench-$RANDOM\",\"site\":\"bench\"}" | json join_token)
    how=(--core "$core_url" --join-token "$join")
  else
    how=(--upstream "$core_url")
  fi
  "$build/edge/wharf-edge" "${how[@]}" --data-dir "$dir" --listen 127.0.0.1:0 --port-file "$dir.port" \
    --log-level warn --access-log false >"$dir.log" 2>&1 &
  edge_pid=$!; pids+=("$edge_pid")
  wait_until "wharf-edge start (log: $dir.log)" 60 "$edge_pid" test -s "$dir.port"
  edge_url=http://127.0.0.1:$(cat "$dir.port")
  wait_until "wharf-edge at $edge_url" 30 "$edge_pid" http_up "$edge_url/v2/"
}

start_nginx() { # dir; sets nginx_pid and nginx_url
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<NGX
worker_processes auto;  # one per core, like the edge's loop threads
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  upstream core { server ${core_url#http://}; keepalive 32; }
  proxy_cache_path $dir/cache levels=1:2 keys_zone=blobs:16m max_size=64g inactive=7d use_temp_path=off;
  server {
    listen 127.0.0.1:$port;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 600s;
    # Blobs are content-addressed: cache them by URI for good, whoever asks (see the header
    # of this script: right for the public repository only). The client's Authorization
    # header goes to the core on a miss as it is.
    location ~ "^/v2/.+/blobs/sha256:[0-9a-f]{64}\$" {
      proxy_pass http://core;
      proxy_cache blobs;
      proxy_cache_key \$request_uri;
      proxy_cache_valid 200 7d;
      proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;
      # One upstream fetch per blob: the others wait for it (not streamed to them), and
      # long enough for the big blob (by default they give up after 5 s and go upstream).
      proxy_cache_lock on;
      proxy_cache_lock_timeout 1h;
      proxy_cache_lock_age 1h;
    }
    location /v2/ { proxy_pass http://core; }
  }
}
NGX
  nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir/stderr.log" 2>&1 &
  nginx_pid=$!; pids+=("$nginx_pid")
  nginx_url=http://127.0.0.1:$port
  wait_until "nginx at $nginx_url (log: $dir/error.log)" 30 $nginx_pid http_up "$nginx_url/v2/"
}
nginx_pids() { echo "$nginx_pid"; ps -o pid= --ppid "$nginx_pid"; }  # master and workers

start_registry() { # dir; sets registry_pid and registry_url
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
proxy: {remoteurl: "$core_url", username: admin, password: "$pat"}
YML
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  registry_pid=$!; pids+=("$registry_pid")
  registry_url=http://127.0.0.1:$port
  wait_until "docker-registry at $registry_url (log: $dir/log)" 30 $registry_pid http_up "$registry_url/v2/"
}
registry_blob() { echo "$work/registry/data/docker/registry/v2/blobs/sha256/${1:7:2}/${1:7}/data"; }

say "starting wharf-edge, nginx (proxy_cache) and docker-registry (proxy) with empty caches"
start_edge "$work/edge"
start_nginx "$work/nginx"
start_registry "$work/registry"
names=(edge nginx registry)
declare -A url
url[edge]=$edge_url; url[nginx]=$nginx_url; url[registry]=$registry_url

lg=("$build/bench/wharf-loadgen")
auth_anon=(--header "Authorization: Bearer $anon_tok")
core_lines() { wc -l <"$work/core.log"; }
upstream() { # from_line method path: requests the core answered since from_line
  tail -n +$(($1 + 1)) "$work/core.log" | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    try:
        j = json.loads(line)
    except ValueError:
        continue
    n += j.get("method") == sys.argv[1] and j.get("path") == sys.argv[2]
print(n)' "$2" "$3"
}
cached() { # name digest size: the proxy holds the whole blob
  case $1 in
    edge) [ "$(stat -c %s "$work/edge/cache/blobs/sha256/${2:7}" 2>/dev/null)" = "$3" ] ;;
    registry) [ "$(stat -c %s "$(registry_blob "$2")" 2>/dev/null)" = "$3" ] ;;
    nginx) local key f  # the cache file: levels=1:2 of md5(key), the key being the URI
      key=$(printf '%s' "/v2/bench/public/blobs/$2" | md5sum | cut -d' ' -f1)
      f=$work/nginx/cache/${key:31:1}/${key:29:2}/$key
      [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt "$3" ] ;;
  esac
}
watch() { case $1 in edge) echo $edge_pid ;; nginx) nginx_pids ;; registry) echo $registry_pid ;; esac; }
watch_args() { local p; wargs=(); for p in $(watch "$1"); do wargs+=(--watch-pid "$p"); done; }

# --- 1. cold ----------------------------------------------------------------------------
declare -A cold cold_gets cold_heads
big_path=/v2/bench/public/blobs/$big
for n in "${names[@]}"; do
  say "cold: $streams simultaneous pulls of the ${blob_mb} MiB blob through $n"
  from=$(core_lines)
  watch_args "$n"
  cold[$n]=$("${lg[@]}" --url "${url[$n]}$big_path" --download "$streams" --expect-bytes "$big_size" \
    "${auth_anon[@]}" "${wargs[@]}")
  wait_until "$n to hold the blob after the cold pulls" 300 "" cached "$n" "$big" "$big_size"
  cold_gets[$n]=$(upstream "$from" GET "$big_path")
  cold_heads[$n]=$(upstream "$from" HEAD "$big_path")
  [ "$(field "${cold[$n]}" errors)" = 0 ] || say "cold $n: $(field "${cold[$n]}" errors) of $streams pulls failed or were short"
done

# --- 2. warm ----------------------------------------------------------------------------
declare -A warm1 warmN warmN_cpu small_run
for n in "${names[@]}"; do warm1[$n]=0; warmN[$n]=0; done
say "warm: the ${blob_mb} MiB blob, 1 and $streams streams, best of $rounds"
from=$(core_lines)
for _ in $(seq "$rounds"); do
  for n in "${names[@]}"; do
    r=$("${lg[@]}" --url "${url[$n]}$big_path" --download 1 --expect-bytes "$big_size" "${auth_anon[@]}")
    [ "$(field "$r" errors)" = 0 ] || die "warm pull through $n failed: $r"
    v=$(field "$r" mbs)
    awk -v a="$v" -v b="${warm1[$n]}" 'BEGIN { exit !(a > b) }' && warm1[$n]=$v
    watch_args "$n"
    r=$("${lg[@]}" --url "${url[$n]}$big_path" --download "$streams" --expect-bytes "$big_size" "${auth_anon[@]}" \
      "${wargs[@]}" --idle-ms 0)
    [ "$(field "$r" errors)" = 0 ] || die "warm pulls through $n failed: $r"
    v=$(field "$r" mbs)
    if awk -v a="$v" -v b="${warmN[$n]}" 'BEGIN { exit !(a > b) }'; then
      warmN[$n]=$v
      warmN_cpu[$n]=$(awk -v ms="$(field "$r" cpu_ms)" -v b="$(field "$r" bytes)" 'BEGIN { printf "%.2f", ms / (b / 1e9) / 1000 }')
    fi
  done
done
warm_big_gets=$(upstream "$from" GET "$big_path")

small_path=/v2/bench/public/blobs/$small
private_small=/v2/bench/private/blobs/$small
admin_tok=$(token repository:bench/private:pull -u "admin:$admin_pw")
auth_admin=(--header "Authorization: Bearer $admin_tok")
for n in "${names[@]}"; do  # fill the caches with the small blob
  curl -fsS -o /dev/null "${auth_anon[@]}" "${url[$n]}$small_path" || die "GET of the small blob through $n failed"
  wait_until "$n to hold the small blob" 30 "" cached "$n" "$small" 4096
done
curl -fsS -o /dev/null "${auth_admin[@]}" "$edge_url$private_small" || die "the edge refuses the admin's pull of bench/private"
tokenless=$(curl -s -o /dev/null -w '%{http_code}' "$edge_url$small_path")
say "warm: GET of the 4 KiB blob, $conns connections x ${load_s}s, best of $rounds (the edge also with an admin token on bench/private)"
from=$(core_lines)
load() { "${lg[@]}" --connections "$conns" --threads "$lg_threads" --seconds "$load_s" "$@"; }
keep_best() { # key run: small_run[key] becomes the run with the most requests/s
  if [ -z "${small_run[$1]:-}" ] ||
    awk -v a="$(field "$2" rps)" -v b="$(field "${small_run[$1]}" rps)" 'BEGIN { exit !(a > b) }'; then
    small_run[$1]=$2
  fi
}
for _ in $(seq "$rounds"); do  # interleaved, best of ROUNDS: the machine is shared
  keep_best edge "$(load --url "$edge_url$small_path" "${auth_anon[@]}")"
  keep_best auth "$(load --url "$edge_url$private_small" "${auth_admin[@]}")"
  keep_best nginx "$(load --url "$nginx_url$small_path" "${auth_anon[@]}")"
  keep_best registry "$(load --url "$registry_url$small_path" "${auth_anon[@]}")"
done
auth_run=${small_run[auth]}
warm_small_gets=$(( $(upstream "$from" GET "$small_path") + $(upstream "$from" GET "$private_small") ))
warm_small_heads=$(( $(upstream "$from" HEAD "$small_path") + $(upstream "$from" HEAD "$private_small") ))
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$edge_pid/status)

# --- the table --------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
# verdict VALUE OP LIMIT -> MET or MISS
verdict() { awk -v v="${1%x}" -v op="$2" -v t="$3" 'BEGIN {
  ok = v != "n/a" && ((op == ">=" && v >= t) || (op == "<" && v < t) || (op == "==" && v == t) || (op == "<=" && v <= t))
  print (ok ? "MET" : "MISS") }'; }
num() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }
secs() { awk -v a="$1" 'BEGIN { printf "%.2f", a / 1000 }'; }
row() { printf '%-40s %11s %11s %11s %10s %10s  %s\n' "$@"; }
# three() LABEL E N R TARGET_OP TARGET_LIMIT TARGET_TEXT: a row of the three figures and the
# ratios; with TARGET_OP, the edge/nginx ratio is judged against TARGET_LIMIT.
three() {
  local target=${7:-}
  [ -z "${5:-}" ] || target="$target$(verdict "$(ratio "$2" "$3")" "$5" "$6")"
  row "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")" "$target"
}
of() { field "$1" "$2"; }
sr() { field "${small_run[$1]}" "$2"; }
cold_mbs() { num "$(of "${cold[$1]}" mbs)"; }
e_idle=$(of "${cold[edge]}" idle_cpu_ms)
rss_mib=$((rss_kb / 1024))
anon_rps=$(num "$(sr edge rps)")
auth_rps=$(num "$(of "$auth_run" rps)")
echo
echo "Wharf edge bench ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, blob ${blob_mb} MiB, $streams streams," \
  "$conns connections x ${load_s}s, best of $rounds)"
row "measure" "wharf-edge" "nginx" "docker-reg" "edge/nginx" "edge/reg" "target"
three "warm pull, 1 stream (MB/s)" "$(num "${warm1[edge]}")" "$(num "${warm1[nginx]}")" "$(num "${warm1[registry]}")" \
  ">=" 1.0 ">= 1.0x nginx: "
three "warm pull, $streams streams (MB/s, aggregate)" "$(num "${warmN[edge]}")" "$(num "${warmN[nginx]}")" \
  "$(num "${warmN[registry]}")" ">=" 1.0 ">= 1.0x nginx: "
row "  proxy CPU s per GB served" "${warmN_cpu[edge]}" "${warmN_cpu[nginx]}" "${warmN_cpu[registry]}" "" "" ""
three "warm 4 KiB GET, $conns conns (req/s)" "$anon_rps" "$(num "$(sr nginx rps)")" "$(num "$(sr registry rps)")" \
  ">=" 0.8 ">= 0.8x nginx: "
row "  p99 latency (ms)" "$(sr edge p99_ms)" "$(sr nginx p99_ms)" "$(sr registry p99_ms)" "" "" ""
three "cold, $streams pulls: aggregate (MB/s)" "$(cold_mbs edge)" "$(cold_mbs nginx)" "$(cold_mbs registry)" "" "" "reported"
row "  slowest client (s)" "$(of "${cold[edge]}" slowest_s)" "$(of "${cold[nginx]}" slowest_s)" \
  "$(of "${cold[registry]}" slowest_s)" "" "" ""
row "  upstream GETs of the blob (core log)" "${cold_gets[edge]}" "${cold_gets[nginx]}" "${cold_gets[registry]}" "" "" \
  "edge == 1: $(verdict "${cold_gets[edge]}" "==" 1)"
row "  upstream HEADs of the blob" "${cold_heads[edge]}" "${cold_heads[nginx]}" "${cold_heads[registry]}" "" "" ""
row "  proxy CPU during the pulls (s)" "$(secs "$(of "${cold[edge]}" cpu_ms)")" "$(secs "$(of "${cold[nginx]}" cpu_ms)")" \
  "$(secs "$(of "${cold[registry]}" cpu_ms)")" "" "" ""
row "  proxy CPU in the 1 s after (ms)" "$(num "$e_idle")" "$(num "$(of "${cold[nginx]}" idle_cpu_ms)")" \
  "$(num "$(of "${cold[registry]}" idle_cpu_ms)")" "" "" "edge idle (<= 20 ms): $(verdict "$e_idle" "<=" 20)"
row "edge 4 KiB GET: admin token, private" "$auth_rps" "" "" "" "" ""
row "  vs anonymous token, public (req/s)" "$anon_rps" "" "" "" "" \
  "auth/anon $(ratio "$auth_rps" "$anon_rps") >= 0.8: $(verdict "$(ratio "$auth_rps" "$anon_rps")" ">=" 0.8)"
row "  p99 latency auth / anon (ms)" "$(of "$auth_run" p99_ms) / $(sr edge p99_ms)" "" "" "" "" ""
row "edge peak RSS, VmHWM (MiB)" "$rss_mib" "" "" "" "" "< 64: $(verdict "$rss_mib" "<" 64)"
echo "notes: upstream requests during the warm runs: $warm_big_gets GETs of the big blob, $warm_small_gets GETs and" \
  "$warm_small_heads HEADs of the small one (0: all served from the caches)"
echo "       a tokenless GET of the public blob through the edge answers $tokenless (the core challenges too)"
for n in "${names[@]}"; do
  extra=""
  [ "$n" != edge ] || extra=" auth $(of "$auth_run" errors)/$(of "$auth_run" non_2xx)"
  echo "errors/non-2xx $n: cold $(of "${cold[$n]}" errors)/$(of "${cold[$n]}" non_2xx)" \
    "small $(sr "$n" errors)/$(sr "$n" non_2xx)$extra"
done
