#!/bin/bash
# Side-by-side benchmark of wharf-core against the references named in the issues, in
# one run on this machine: Debian's docker-registry (the reference registry) and nginx
# with sendfile (the reference static server). Prints a table with both and the ratios.
#
#   bench/run.sh [BUILD_DIR]      (default: build; needs docker-registry, nginx, curl)
#
# Environment: BLOB_MB (default 1024), SECONDS_PER_LOAD (default 10), CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
blob_mb=${BLOB_MB:-1024}
load_s=${SECONDS_PER_LOAD:-10}
conns=${CONNECTIONS:-64}
for c in docker-registry nginx curl openssl; do
  command -v $c >/dev/null || { echo "bench: $c is missing (apt-get install docker-registry nginx curl)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/wharf-bench-XXXXXX)
chmod 755 "$work"  # nginx workers (www-data) read the blob from here
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "bench: $1 did not come up" >&2; exit 1; }
now() { date +%s.%N; }

# --- servers -------------------------------------------------------------------------
wp=$(free_port)
"$build/core/wharf-core" --listen 127.0.0.1:$wp --data-dir "$work/wharf" --auth none --log-level warn --access-log false \
  >"$work/wharf.log" 2>&1 &
wharf_pid=$!; pids+=($wharf_pid)
rp=$(free_port)
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$rp}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
np=$(free_port)
mkdir -p "$work/nginx/www" "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$np; root $work/nginx/www; }
}
NGX
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_http http://127.0.0.1:$wp/v2/
wait_http http://127.0.0.1:$rp/v2/

# --- data ----------------------------------------------------------------------------
echo "bench: generating a ${blob_mb} MiB blob" >&2
head -c $((blob_mb << 20)) /dev/urandom >"$work/nginx/www/blob"
chmod -R a+rX "$work/nginx/www"
# The physical bound of a durable push: this disk's write speed with fdatasync.
disk_mbs=$(dd if="$work/nginx/www/blob" of="$work/ddtest" bs=4M conv=fdatasync 2>&1 | awk '/copied/ {print int($(NF-1) * ($NF == "GB/s" ? 1000 : 1))}')
rm -f "$work/ddtest"
blob="$work/nginx/www/blob"
digest=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
sha_mbs=$(openssl speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null | awk '/^sha256/ {sub("k","",$NF); print $NF/1000}')

# push: POST to start, PUT the whole blob with ?digest=, as clients finishing a stream do.
push() { # base repo
  local loc
  loc=$(curl -fsS -o /dev/null -D - -X POST "$1/v2/$2/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in http*) ;; *) loc="$1$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  local t0 t1
  t0=$(now)
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T "$blob" "$loc"
  t1=$(now)
  echo "$t0 $t1" | awk -v mb=$blob_mb '{printf "%.0f", mb*1.048576/($2-$1)}'
}
pull() { # url -> MB/s
  curl -fsS -o /dev/null -w '%{speed_download}' "$1" | awk '{printf "%.0f", $1/1e6}'
}
best() { local b=0 v; for _ in 1 2 3; do v=$("$@"); [ "$v" -gt "$b" ] && b=$v; done; echo $b; }

drop_cache() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

echo "bench: push" >&2
wharf_push=$(best push http://127.0.0.1:$wp bench/push)
reg_push=$(best push http://127.0.0.1:$rp bench/push)
echo "bench: pull" >&2
wharf_pull=$(best pull http://127.0.0.1:$wp/v2/bench/push/blobs/$digest)
reg_pull=$(best pull http://127.0.0.1:$rp/v2/bench/push/blobs/$digest)
nginx_pull=$(best pull http://127.0.0.1:$np/blob)

# --- small requests --------------------------------------------------------------------
small() { # base: push a small image, tag v1
  local cfg='{"architecture":"amd64","os":"linux"}' layer="small layer bytes"
  local cd=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
  local ld=sha256:$(printf '%s' "$layer" | sha256sum | cut -d' ' -f1)
  for pair in "$cfg $cd" "$layer $ld"; do :; done
  upload() { # data digest
    local loc
    loc=$(curl -fsS -o /dev/null -D - -X POST "$1/v2/bench/small/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
    case "$loc" in http*) ;; *) loc="$1$loc" ;; esac
    case "$loc" in *\?*) loc="$loc&digest=$3" ;; *) loc="$loc?digest=$3" ;; esac
    printf '%s' "$2" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @- "$loc"
  }
  upload "$1" "$cfg" "$cd"
  upload "$1" "$layer" "$ld"
  local m="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd\",\"size\":${#cfg}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ld\",\"size\":${#layer}}]}"
  printf '%s' "$m" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @- "$1/v2/bench/small/manifests/v1"
  echo "$ld"
}
ld=$(small http://127.0.0.1:$wp)
small http://127.0.0.1:$rp >/dev/null
load() { "$build/bench/wharf-loadgen" --connections $conns --seconds $load_s "$@"; }
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['$2'], 2))" "$1"; }
echo "bench: GET manifest by tag, $conns connections" >&2
w_man=$(load --url http://127.0.0.1:$wp/v2/bench/small/manifests/v1 --header 'Accept: application/vnd.oci.image.manifest.v1+json')
r_man=$(load --url http://127.0.0.1:$rp/v2/bench/small/manifests/v1 --header 'Accept: application/vnd.oci.image.manifest.v1+json')
echo "bench: HEAD blob, $conns connections" >&2
w_head=$(load --method HEAD --url http://127.0.0.1:$wp/v2/bench/small/blobs/$ld)
r_head=$(load --method HEAD --url http://127.0.0.1:$rp/v2/bench/small/blobs/$ld)
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$wharf_pid/status)

# --- access control: the same core with token auth --------------------------------------
echo "bench: authenticated requests" >&2
ap=$(free_port)
WHARF_ADMIN_PASSWORD=bench-admin-pw "$build/core/wharf-core" --listen 127.0.0.1:$ap --data-dir "$work/wharf-auth" \
  --log-level warn --access-log false >"$work/wharf-auth.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$ap/v2/" && break; sleep 0.05; done
pat=$(curl -fsS -u admin:bench-admin-pw -H 'Content-Type: application/json' -d '{"name":"bench"}' \
  "http://127.0.0.1:$ap/api/v1/users/admin/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
tok() { curl -fsS -u "admin:$pat" "http://127.0.0.1:$ap/auth/token?service=wharf&scope=repository:bench/small:$1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
push_tok=$(tok pull,push)
# small() again, through a bearer token: curl picks the header up from CURL_HOME-less -H via an alias.
curl_auth() { command curl -H "Authorization: Bearer $push_tok" "$@"; }
( curl() { curl_auth "$@"; }; small http://127.0.0.1:$ap >/dev/null )
pull_tok=$(tok pull)
a_man=$(load --url http://127.0.0.1:$ap/v2/bench/small/manifests/v1 --header "Authorization: Bearer $pull_tok" \
  --header 'Accept: application/vnd.oci.image.manifest.v1+json')
u_man=$(load --url http://127.0.0.1:$wp/v2/bench/small/manifests/v1 --header 'Accept: application/vnd.oci.image.manifest.v1+json')
a_tok=$(load --url "http://127.0.0.1:$ap/auth/token?service=wharf&scope=repository:bench/small:pull" \
  --header "Authorization: Basic $(printf 'admin:%s' "$pat" | base64 -w0)")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
echo
echo "Wharf bench ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, blob ${blob_mb} MiB, $conns connections x ${load_s}s)"
printf '%-34s %14s %16s %10s\n' "measure" "wharf-core" "reference" "ratio"
printf '%-34s %14s %16s %10s\n' "push 1 blob (MB/s)" "$wharf_push" "$reg_push registry" "$(ratio $wharf_push $reg_push)"
printf '%-34s %14s %16s %10s\n' "push vs openssl sha256 (MB/s)" "$wharf_push" "$sha_mbs sha256" "$(ratio $wharf_push $sha_mbs)"
printf '%-34s %14s %16s %10s\n' "registry push vs sha256" "" "" "$(ratio $reg_push $sha_mbs)"
printf '%-34s %14s %16s %10s\n' "push vs disk fdatasync (MB/s)" "$wharf_push" "$disk_mbs disk" "$(ratio $wharf_push $disk_mbs)"
printf '%-34s %14s %16s %10s\n' "pull 1 blob (MB/s)" "$wharf_pull" "$nginx_pull nginx" "$(ratio $wharf_pull $nginx_pull)"
printf '%-34s %14s %16s %10s\n' "pull 1 blob vs registry (MB/s)" "$wharf_pull" "$reg_pull registry" "$(ratio $wharf_pull $reg_pull)"
printf '%-34s %14s %16s %10s\n' "GET manifest by tag (req/s)" "$(field "$w_man" rps)" "$(field "$r_man" rps) registry" "$(ratio $(field "$w_man" rps) $(field "$r_man" rps))"
printf '%-34s %14s %16s %10s\n' "  p99 latency (ms)" "$(field "$w_man" p99_ms)" "$(field "$r_man" p99_ms)" ""
printf '%-34s %14s %16s %10s\n' "HEAD blob (req/s)" "$(field "$w_head" rps)" "$(field "$r_head" rps) registry" "$(ratio $(field "$w_head" rps) $(field "$r_head" rps))"
printf '%-34s %14s %16s %10s\n' "  p99 latency (ms)" "$(field "$w_head" p99_ms)" "$(field "$r_head" p99_ms)" ""
printf '%-34s %14s %16s %10s\n' "wharf-core peak RSS (MiB)" "$((rss_kb / 1024))" "limit 64" ""
printf '%-34s %14s %16s %10s\n' "auth GET manifest (req/s)" "$(field "$a_man" rps)" "$(field "$u_man" rps) no auth" "$(ratio $(field "$a_man" rps) $(field "$u_man" rps))"
printf '%-34s %14s %16s %10s\n' "  p99 latency (ms)" "$(field "$a_man" p99_ms)" "$(field "$u_man" p99_ms)" ""
printf '%-34s %14s %16s %10s\n' "/auth/token with PAT (tokens/s)" "$(field "$a_tok" rps)" "target 5000" "$(ratio $(field "$a_tok" rps) 5000)"
echo "errors: auth man=$(field "$a_man" errors)/$(field "$a_man" non_2xx) token=$(field "$a_tok" errors)/$(field "$a_tok" non_2xx)"
echo "errors: wharf man=$(field "$w_man" errors)/$(field "$w_man" non_2xx) head=$(field "$w_head" errors)/$(field "$w_head" non_2xx); registry man=$(field "$r_man" errors)/$(field "$r_man" non_2xx) head=$(field "$r_head" errors)/$(field "$r_head" non_2xx)"
