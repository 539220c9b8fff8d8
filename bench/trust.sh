#!/bin/bash
# Signing (issue 13) figures, one run on this machine, wharf-core with --auth none:
#   1. publishing trust data of 1,000 targets (wharf-trustbench: 10 updates, each checked
#      as Notary's server checks them, stored, and timestamped);
#   2. GET timestamp.json at 64 connections (requests/s, p99);
#   3. pulls by tag (GET manifest) without a trust policy and with "require notary" (the
#      tag signed): the ratio (target >= 0.8x), rounds alternated so that noise falls on
#      both.
#
#   bench/trust.sh [BUILD_DIR]     Environment: SECONDS_PER_LOAD (5), CONNECTIONS (64), ROUNDS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
load_s=${SECONDS_PER_LOAD:-5}
conns=${CONNECTIONS:-64}
rounds=${ROUNDS:-3}
[ -x "$build/bench/wharf-trustbench" ] || { echo "bench: $build/bench/wharf-trustbench is missing (build with tests and bench)" >&2; exit 2; }
work=$(mktemp -d /tmp/wharf-trust-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$build/core/wharf-core" --listen 127.0.0.1:0 --port-file "$work/port" --data-dir "$work/data" --auth none \
  --log-level warn --access-log false --scan-on-push false >"$work/core.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
url=http://127.0.0.1:$port

# An image to pull: a config, a layer, a manifest tagged v1.
cfg='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
layer=$(head -c 2048 /dev/urandom | base64 -w0)
push_blob() { printf '%s' "$1" | curl -fsS -o /dev/null -X POST --data-binary @- "$url/v2/bench/app/blobs/uploads/?digest=$2"; }
cd_=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
ld=sha256:$(printf '%s' "$layer" | sha256sum | cut -d' ' -f1)
push_blob "$cfg" "$cd_"
push_blob "$layer" "$ld"
m="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd_\",\"size\":${#cfg}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"$ld\",\"size\":${#layer}}]}"
printf '%s' "$m" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @- "$url/v2/bench/app/manifests/v1"
md=sha256:$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)

echo "bench: publishing 1,000 targets x 10" >&2
pub=$("$build/bench/wharf-trustbench" --core "$url" --repo bench/app --targets 1000 --publishes 10 \
  --tag v1 --manifest-digest "$md" --manifest-size ${#m})
gun=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['gun'])" "$pub")

load() { "$build/bench/wharf-loadgen" --connections $conns --seconds $load_s "$@"; }
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['$2'], 2))" "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "bench: GET timestamp.json, $conns connections" >&2
ts=$(load --url "$url/v2/$gun/_trust/tuf/timestamp.json")

policy() { curl -fsS -o /dev/null -X "$1" -H 'Content-Type: application/json' ${2:+--data "$2"} "$url/api/v1/policies/bench/app"; }
without=() with=()
for r in $(seq "$rounds"); do
  echo "bench: pulls by tag, round $r of $rounds" >&2
  policy DELETE "" 2>/dev/null || true
  out=$(load --url "$url/v2/bench/app/manifests/v1" --header 'Accept: application/vnd.oci.image.manifest.v1+json')
  without+=("$(field "$out" rps)")
  [ "$(field "$out" non_2xx)" = "0" ] || { echo "bench: unexpected refusals without a policy" >&2; exit 1; }
  policy PUT '{"trust":{"require":"notary"}}'
  out=$(load --url "$url/v2/bench/app/manifests/v1" --header 'Accept: application/vnd.oci.image.manifest.v1+json')
  with+=("$(field "$out" rps)")
  [ "$(field "$out" non_2xx)" = "0" ] || { echo "bench: the signed tag was refused" >&2; exit 1; }
done
w=$(median "${without[@]}")
s=$(median "${with[@]}")
# The policy is enforced: an unsigned tag is refused.
printf '%s' "$m" | curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @- "$url/v2/bench/app/manifests/unsigned"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/v2/bench/app/manifests/unsigned")
[ "$code" = 403 ] || { echo "bench: an unsigned tag was served ($code)" >&2; exit 1; }

echo
echo "Wharf trust bench ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $conns connections x ${load_s}s)"
printf '%-44s %s\n' "publish 1,000 targets (first, median, max ms)" \
  "$(field "$pub" first_ms) / $(field "$pub" median_ms) / $(field "$pub" max_ms)  ($(field "$pub" update_bytes) bytes per update)"
printf '%-44s %s req/s, p99 %s ms\n' "GET timestamp.json" "$(field "$ts" rps)" "$(field "$ts" p99_ms)"
printf '%-44s %s req/s (rounds: %s)\n' "pull by tag, no trust policy" "$w" "${without[*]}"
printf '%-44s %s req/s (rounds: %s)\n' "pull by tag, require notary (signed)" "$s" "${with[*]}"
printf '%-44s %s (target >= 0.8x)\n' "ratio" "$(awk -v a="$s" -v b="$w" 'BEGIN { printf "%.2fx", a/b }')"
