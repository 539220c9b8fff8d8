#!/bin/bash
# Side-by-side benchmark of wharf-core embedded (LMDB + filesystem) against wharf-core
# scale-out (PostgreSQL metadata + S3 blobs on a Ceph micro-cluster), in one run on this
# machine, with plain S3 PUTs to the same radosgw as the reference for blob pushes.
# Prints JSON lines as measurements complete and a final table with the ratios. Pushes
# and plain PUTs are sent by one client, wharf-pushbench (bench/push_bench.cc).
#
#   bench/scale_out.sh [BUILD_DIR]     (default: build)
#
# Needs: PostgreSQL 15 (apt-get install postgresql), Ceph (ceph-mon ceph-osd radosgw),
# curl >= 7.75 (--aws-sigv4), python3; root runs PostgreSQL as nobody (setpriv).
#
# Environment:
#   SECONDS_PER_LOAD  seconds per manifest GET load (default 10)
#   CONNECTIONS       connections of that load (default 64)
#   BLOB_MB           size of each pushed blob in MiB (default 64)
#   BLOBS             blobs per push run (default 4)
#   PARALLEL          concurrent pushes in the parallel variant (default 4)
#   PULL_STREAMS      simultaneous downloads of one blob (default 8)
#   CLIENT_MBS        the rate of the paced pushes, as a client on a network (default 100)
#   KEEP=1            keep the work directory (logs, data) under /tmp
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
load_s=${SECONDS_PER_LOAD:-10}
conns=${CONNECTIONS:-64}
blob_mb=${BLOB_MB:-64}
nblobs=${BLOBS:-4}
parallel=${PARALLEL:-4}
streams=${PULL_STREAMS:-8}
client_mbs=${CLIENT_MBS:-100}
pgbin=/usr/lib/postgresql/15/bin
ceph_sh=$PWD/tests/support/micro-ceph.sh

# --- preconditions ---------------------------------------------------------------------
die() { echo "bench: $*" >&2; exit 2; }
for v in load_s conns blob_mb nblobs parallel streams client_mbs; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for c in curl python3 sha256sum ceph monmaptool ceph-mon ceph-osd radosgw radosgw-admin; do
  command -v $c >/dev/null || die "$c is missing (apt-get install curl python3 ceph-mon ceph-osd radosgw)"
done
for c in initdb postgres psql pg_isready; do
  [ -x $pgbin/$c ] || die "$pgbin/$c is missing (apt-get install postgresql-15)"
done
curl --help all 2>/dev/null | grep -q -- --aws-sigv4 || die "curl is too old for --aws-sigv4 (needs >= 7.75)"
[ -x "$build/core/wharf-core" ] || die "$build/core/wharf-core is missing (build it first)"
[ -x "$build/bench/wharf-loadgen" ] || die "$build/bench/wharf-loadgen is missing (build it first)"
[ -x "$build/bench/wharf-pushbench" ] || die "$build/bench/wharf-pushbench is missing (build it first)"
[ -x "$ceph_sh" ] || die "$ceph_sh is missing or not executable"
# PostgreSQL refuses to run as root: then it runs as nobody, as in tests/support/postgres.cc.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || die "setpriv is missing (apt-get install util-linux)"
  as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
fi
# The OSD keeps objects in RAM (memstore, a 4 GiB device here); radosgw stops writing
# near full and its garbage collection is off, so nothing pushed is given back. Pushed to
# S3: the sequential and the parallel set through B, through C and plain, the chunked set
# through B and as a plain multipart upload, the paced sets through B (twice) and plain,
# and a warm-up blob each way.
export MEMSTORE_BYTES=$((4 << 30))
s3_mib=$((11 * nblobs * blob_mb + 3 * blob_mb))
[ $s3_mib -le 3400 ] || die "BLOBS x BLOB_MB too large: $s3_mib MiB would go to the memstore OSD (max ~3400)"

# --- work dir, cleanup -----------------------------------------------------------------
work=$(mktemp -d /tmp/wharf-scale-XXXXXX)
chmod 755 "$work"  # PostgreSQL (nobody) reaches its directories in here
core_pids=()
pg_pid=
ceph_started=
cleanup() {
  set +e
  for p in "${core_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${core_pids[@]}"; do wait "$p" 2>/dev/null; done
  # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for clients to leave).
  if [ -n "$pg_pid" ]; then kill -INT "$pg_pid" 2>/dev/null; wait "$pg_pid" 2>/dev/null; fi
  [ -z "$ceph_started" ] || "$ceph_sh" stop "$work/c" >/dev/null 2>&1
  wait 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }
# pick_port VAR: a free port not picked before and outside the OSD's range (6800-7300).
picked=" "
pa='' pb='' pc='' pgport='' rgwport='' monport=''
pick_port() {
  local p
  while :; do
    p=$(free_port)
    [[ $picked == *" $p "* ]] && continue
    [ "$p" -ge 6800 ] && [ "$p" -le 7300 ] && continue
    picked+="$p "
    printf -v "$1" '%s' "$p"
    return
  done
}
# alive PID: the process exists and is not a zombie (an exited child not yet waited for).
alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s:0:1}" != Z ]; }
# wait_http URL PID LOG: until URL answers; fail at once (with the log) if PID exits.
wait_http() {
  for _ in $(seq 1200); do
    curl -s -o /dev/null "$1" && return 0
    alive "$2" || { echo "bench: the server for $1 exited:" >&2; tail -n 30 "$3" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: $1 did not come up in 60s" >&2; tail -n 30 "$3" >&2; exit 1
}
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['$2'], 2))" "$1"; }
# emit MEASURE TARGET JSON: one result line, the measure and target prepended to JSON.
emit() { printf '{"measure":"%s","target":"%s",%s\n' "$1" "$2" "${3#\{}"; }

pick_port pa; pick_port pb; pick_port pc; pick_port pgport; pick_port rgwport; pick_port monport

# --- machine -----------------------------------------------------------------------------
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff-index --quiet HEAD -- 2>/dev/null || commit="$commit+uncommitted"
echo "machine: $(nproc) cores, commit $commit, $(date -u +%Y-%m-%dT%H:%MZ)"
free -g
emit machine "$(uname -n)" "{\"nproc\":$(nproc),\"mem_gib\":$(free -g | awk '/^Mem:/ {print $2}'),\"commit\":\"$commit\"}"

# --- PostgreSQL ---------------------------------------------------------------------------
echo "bench: starting PostgreSQL on 127.0.0.1:$pgport" >&2
mkdir -p "$work/pg" "$work/pgs"  # data, unix socket
chmod 700 "$work/pg"
[ ${#as_pg[@]} -eq 0 ] || chown nobody:nogroup "$work/pg" "$work/pgs"
# Run from $work: nobody may not be able to enter the current directory.
(cd "$work" && exec "${as_pg[@]}" $pgbin/initdb -D "$work/pg" -U postgres -A trust -E UTF8 --locale=C --no-sync) \
  >"$work/initdb.log" 2>&1 || { echo "bench: initdb failed:" >&2; tail -n 30 "$work/initdb.log" >&2; exit 1; }
# The subshell execs setpriv, which execs postgres: $! is the postmaster itself.
(cd "$work" && exec "${as_pg[@]}" $pgbin/postgres -D "$work/pg" -p "$pgport" -k "$work/pgs" \
  -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=128MB -c fsync=on) >"$work/postgres.log" 2>&1 &
pg_pid=$!

# --- Ceph (while PostgreSQL starts) ----------------------------------------------------
echo "bench: starting the Ceph micro-cluster (radosgw on 127.0.0.1:$rgwport)" >&2
ceph_started=1
# Prints: endpoint=... access_key=... secret_key=...
ceph_line=$("$ceph_sh" start "$work/c" "$rgwport" "$monport" 2>"$work/micro-ceph.log") ||
  { echo "bench: micro-ceph.sh start failed:" >&2; tail -n 40 "$work/micro-ceph.log" >&2; exit 1; }
s3=http://127.0.0.1:$rgwport
ak=$(sed -n 's/.*access_key=\([^ ]*\).*/\1/p' <<<"$ceph_line")
sk=$(sed -n 's/.*secret_key=\([^ ]*\).*/\1/p' <<<"$ceph_line")
if [ -z "$ak" ] || [ -z "$sk" ]; then echo "bench: no keys from micro-ceph.sh: $ceph_line" >&2; exit 1; fi
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$ak" "$sk" >"$work/credentials"

# --- PostgreSQL ready, database ------------------------------------------------------------
deadline=$((SECONDS + 60))
until $pgbin/pg_isready -q -h 127.0.0.1 -p "$pgport"; do
  alive "$pg_pid" || { echo "bench: postgres exited:" >&2; tail -n 30 "$work/postgres.log" >&2; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "bench: postgres not ready in 60s:" >&2; tail -n 30 "$work/postgres.log" >&2; exit 1; }
  sleep 0.2
done
$pgbin/psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres -c 'CREATE DATABASE wharf' >/dev/null
$pgbin/psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres -c 'CREATE DATABASE wharf_c' >/dev/null

# --- the two cores -------------------------------------------------------------------------
core=("$build/core/wharf-core" --auth none --log-level warn --access-log false)
"${core[@]}" --listen "127.0.0.1:$pa" --data-dir "$work/lmdb" >"$work/core-a.log" 2>&1 &
core_pids+=($!)
# B: its own data dir (local files such as the event log stay there with PostgreSQL too).
"${core[@]}" --listen "127.0.0.1:$pb" --data-dir "$work/scale" \
  --metadata "postgres://postgres@127.0.0.1:$pgport/wharf" \
  --blobs "s3://wharf-bench/registry?endpoint=$s3&credentials=$work/credentials" >"$work/core-b.log" 2>&1 &
core_pids+=($!)
# C: B with unsigned request bodies (payload=unsigned, the default over https), as the
# plain PUTs send theirs; its own database and prefix, so that its pushes find nothing.
"${core[@]}" --listen "127.0.0.1:$pc" --data-dir "$work/scale-c" \
  --metadata "postgres://postgres@127.0.0.1:$pgport/wharf_c" \
  --blobs "s3://wharf-bench/registry-c?endpoint=$s3&credentials=$work/credentials&payload=unsigned" \
  >"$work/core-c.log" 2>&1 &
core_pids+=($!)
A=http://127.0.0.1:$pa
B=http://127.0.0.1:$pb
C=http://127.0.0.1:$pc
wait_http "$A/v2/" "${core_pids[0]}" "$work/core-a.log"
wait_http "$B/v2/" "${core_pids[1]}" "$work/core-b.log"
wait_http "$C/v2/" "${core_pids[2]}" "$work/core-c.log"

# --- data: BLOBS random blobs for the sequential run, BLOBS others for the parallel one
# (a blob already stored would not be written again) ------------------------------------
echo "bench: generating 2 x $nblobs blobs of $blob_mb MiB" >&2
mkdir -p "$work/blobs"
declare -A hex
for kind in seq par chunked paced paced_chunked warm; do
  for i in $(seq "$nblobs"); do
    f=$work/blobs/$kind-$i
    head -c $((blob_mb << 20)) /dev/urandom >"$f"
    hex[$f]=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$kind" != warm ] || break  # one warm-up blob
  done
done
blob_bytes=$((blob_mb << 20))

# --- 1. GET manifest by tag -----------------------------------------------------------------
# push_image BASE: a config blob, one ~1 MB random layer and an OCI manifest tagged v1.
head -c 1048576 /dev/urandom >"$work/layer"
printf '%s' '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
upload_small() { # base file digest
  curl -sS -f -o /dev/null -X POST --data-binary "@$2" -H 'Content-Type: application/octet-stream' \
    "$1/v2/bench/app/blobs/uploads/?digest=$3"
}
push_image() {
  local base=$1 cd ld m
  cd=sha256:$(sha256sum "$work/config" | cut -d' ' -f1)
  ld=sha256:$(sha256sum "$work/layer" | cut -d' ' -f1)
  upload_small "$base" "$work/config" "$cd"
  upload_small "$base" "$work/layer" "$ld"
  m="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd\",\"size\":$(stat -c %s "$work/config")},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ld\",\"size\":$(stat -c %s "$work/layer")}]}"
  printf '%s' "$m" | curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @- "$base/v2/bench/app/manifests/v1"
}
push_image "$A"
push_image "$B"
load() { "$build/bench/wharf-loadgen" --connections "$conns" --seconds "$load_s" "$@"; }
echo "bench: GET manifest by tag, $conns connections x ${load_s}s" >&2
a_man=$(load --url "$A/v2/bench/app/manifests/v1" --header 'Accept: application/vnd.oci.image.manifest.v1+json')
emit manifest_get embedded "$a_man"
b_man=$(load --url "$B/v2/bench/app/manifests/v1" --header 'Accept: application/vnd.oci.image.manifest.v1+json')
emit manifest_get scale-out "$b_man"

# --- 2. blob push throughput ------------------------------------------------------------------
# A push as skopeo, podman and crane make it: POST starts an upload, one PATCH streams the
# whole blob (Content-Length), PUT ?digest= ends it; as Docker makes it, the PATCH is
# chunked (no length). The reference: a plain S3 PUT of the same bytes to the same
# radosgw. One client sends all of them, on keep-alive connections (curl in a shell costs
# a process and a pipe per request: three times for a push, once for a plain PUT).
curl -sS -f -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ak:$sk" \
  -H "x-amz-content-sha256: $(printf '' | sha256sum | cut -d' ' -f1)" -X PUT "$s3/wharf-plain"
plain_url="s3://wharf-plain?endpoint=$s3&credentials=$work/credentials"
pushbench() { "$build/bench/wharf-pushbench" "$@"; }
# The first large PUTs a fresh radosgw takes are slower: one blob each way first.
for base in "$A" "$B" "$C"; do pushbench --registry "$base" --repo bench/warm "$work/blobs/warm-1" >/dev/null; done
pushbench --s3 "$plain_url" "$work/blobs/warm-1" >/dev/null

# measure_push SET(seq|par|chunked) TARGET ARGS...: push the set's blobs with
# wharf-pushbench ARGS (one after another, or PARALLEL at a time for par); sets $mbs
# (MB = 10^6 bytes) and prints a JSON line.
measure_push() {
  local kind=$1 target=$2 out n=1
  shift 2
  [ "$kind" != par ] || n=$parallel
  out=$(pushbench --parallel "$n" "$@" "$work/blobs/$kind"-*) || die "pushes to $target failed"
  mbs=$(field "$out" mbs)
  local mode=sequential
  [ "$kind" != par ] || mode="parallel_$parallel"
  case $kind in
    chunked) mode=sequential_chunked ;;
    paced) mode=sequential_${client_mbs}mbs_client ;;
    paced_chunked) mode=sequential_chunked_${client_mbs}mbs_client ;;
  esac
  emit "push_$mode" "$target" "$out"
}
push_a=(--registry "$A" --repo bench/push)
push_b=(--registry "$B" --repo bench/push)
push_c=(--registry "$C" --repo bench/push)
push_s3=(--s3 "$plain_url")
echo "bench: push $nblobs x $blob_mb MiB, one after another" >&2
measure_push seq embedded "${push_a[@]}"; a_seq=$mbs
measure_push seq scale-out "${push_b[@]}"; b_seq=$mbs
measure_push seq scale-out-unsigned "${push_c[@]}"; c_seq=$mbs
measure_push seq plain-s3 "${push_s3[@]}"; s_seq=$mbs
measure_push chunked scale-out "${push_b[@]}" --chunked; b_chunked=$mbs
# What the store's multipart path costs by itself: a body of unknown length goes that way.
measure_push chunked plain-s3-multipart "${push_s3[@]}" --multipart-mb 16; s_multipart=$mbs
echo "bench: push $nblobs x $blob_mb MiB, one after another, each sent at $client_mbs MB/s" >&2
measure_push paced scale-out "${push_b[@]}" --rate-mbs "$client_mbs"; b_paced=$mbs
measure_push paced_chunked scale-out "${push_b[@]}" --chunked --rate-mbs "$client_mbs"; b_paced_chunked=$mbs
measure_push paced plain-s3 "${push_s3[@]}" --rate-mbs "$client_mbs"; s_paced=$mbs
echo "bench: push $nblobs x $blob_mb MiB, $parallel at a time" >&2
measure_push par embedded "${push_a[@]}"; a_par=$mbs
measure_push par scale-out "${push_b[@]}"; b_par=$mbs
measure_push par scale-out-unsigned "${push_c[@]}"; c_par=$mbs
measure_push par plain-s3 "${push_s3[@]}"; s_par=$mbs

# Where B's pushes went: its requests to the S3 store by operation (count, mean ms).
s3_ops=$(curl -sS "$B/metrics" | python3 -c '
import re, sys, json
agg = {}
for line in sys.stdin:
    m = re.match(r"wharf_s3_request_seconds_(sum|count)\{op=\"([a-z_]+)\"\} ([0-9.e+-]+)", line)
    if m: agg.setdefault(m.group(2), {})[m.group(1)] = float(m.group(3))
print(json.dumps({op: {"count": int(v.get("count", 0)), "mean_ms": round(1000 * v.get("sum", 0) / max(v.get("count", 1), 1), 1)}
                  for op, v in sorted(agg.items())}))')
emit s3_requests scale-out "{\"ops\":$s3_ops}"

# --- 3. blob pull throughput -------------------------------------------------------------------
echo "bench: pull one $blob_mb MiB blob, $streams streams" >&2
pull_url=/v2/bench/push/blobs/sha256:${hex[$work/blobs/seq-1]}
a_pull=$("$build/bench/wharf-loadgen" --url "$A$pull_url" --download "$streams" --expect-bytes "$blob_bytes")
emit pull embedded "$a_pull"
b_pull=$("$build/bench/wharf-loadgen" --url "$B$pull_url" --download "$streams" --expect-bytes "$blob_bytes")
emit pull scale-out "$b_pull"

# --- table ---------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
# meets A B MIN: "ok" when A/B >= MIN, else "BELOW".
meets() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { print (b > 0 && a/b >= m) ? "ok" : "BELOW" }'; }
a_rps=$(field "$a_man" rps); b_rps=$(field "$b_man" rps)
a_mbs=$(field "$a_pull" mbs); b_mbs=$(field "$b_pull" mbs)
row() { printf '%-30s %10s %10s %10s %8s %8s  %s\n' "$@"; }
echo
echo "Wharf scale-out bench ($(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(nproc) cores)"
echo "A: embedded (LMDB + filesystem); B: scale-out (PostgreSQL 15 + S3 on radosgw/memstore)"
row "measure" "A" "B" "plain S3" "B/A" "B/S3" "target"
row "GET manifest by tag (req/s)" "$a_rps" "$b_rps" "" "$(ratio "$b_rps" "$a_rps")" "" \
  "B/A >= 0.5: $(meets "$b_rps" "$a_rps" 0.5)"
row "  p99 latency (ms)" "$(field "$a_man" p99_ms)" "$(field "$b_man" p99_ms)" "" "" "" ""
row "push ${nblobs}x${blob_mb} MiB seq (MB/s)" "$a_seq" "$b_seq" "$s_seq" "$(ratio "$b_seq" "$a_seq")" \
  "$(ratio "$b_seq" "$s_seq")" "B/S3 >= 0.8: $(meets "$b_seq" "$s_seq" 0.8)"
row "push ${nblobs}x${blob_mb} MiB ${parallel}-par (MB/s)" "$a_par" "$b_par" "$s_par" "$(ratio "$b_par" "$a_par")" \
  "$(ratio "$b_par" "$s_par")" "B/S3 >= 0.8: $(meets "$b_par" "$s_par" 0.8)"
row "  payload=unsigned (MB/s)" "" "$c_seq" "$s_seq" "" "$(ratio "$c_seq" "$s_seq")" \
  "B/S3 >= 0.8: $(meets "$c_seq" "$s_seq" 0.8)"
row "  payload=unsigned par (MB/s)" "" "$c_par" "$s_par" "" "$(ratio "$c_par" "$s_par")" \
  "B/S3 >= 0.8: $(meets "$c_par" "$s_par" 0.8)"
row "  chunked PATCH seq (MB/s)" "" "$b_chunked" "$s_seq" "" "$(ratio "$b_chunked" "$s_seq")" \
  "B/S3 >= 0.8: $(meets "$b_chunked" "$s_seq" 0.8)"
row "    S3 multipart, 16 MiB parts" "" "$b_chunked" "$s_multipart" "" "$(ratio "$b_chunked" "$s_multipart")" ""
row "push seq, client ${client_mbs} MB/s" "" "$b_paced" "$s_paced" "" "$(ratio "$b_paced" "$s_paced")" \
  "B/S3 >= 0.8: $(meets "$b_paced" "$s_paced" 0.8)"
row "  chunked PATCH (MB/s)" "" "$b_paced_chunked" "$s_paced" "" "$(ratio "$b_paced_chunked" "$s_paced")" \
  "B/S3 >= 0.8: $(meets "$b_paced_chunked" "$s_paced" 0.8)"
row "pull ${blob_mb} MiB x$streams (MB/s)" "$a_mbs" "$b_mbs" "" "$(ratio "$b_mbs" "$a_mbs")" "" ""
echo "load: $conns connections x ${load_s}s; MB = 10^6 bytes; S3 = the same radosgw, plain PUTs"
echo "errors/non-2xx: manifest A=$(field "$a_man" errors)/$(field "$a_man" non_2xx) B=$(field "$b_man" errors)/$(field "$b_man" non_2xx);" \
  "pull A=$(field "$a_pull" errors)/$(field "$a_pull" non_2xx) B=$(field "$b_pull" errors)/$(field "$b_pull" non_2xx)"
