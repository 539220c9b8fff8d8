#!/bin/sh
# Wharf quickstart for a fresh Debian 12 machine, as root.
#
#   appliance/quickstart.sh run    install what is needed, build, run wharf-core
#   appliance/quickstart.sh test   install what is needed, build, run every test
#
# Environment: WHARF_BUILD (build dir, default build), WHARF_DATA (data dir for `run`,
# default wharf-data), WHARF_LISTEN (default 127.0.0.1:5000), JOBS (default nproc); for
# `test`, FUZZ_SECONDS (new inputs per fuzz target, default 15) and WHARF_FUZZ_BUILD.
set -eu

cd "$(dirname "$0")/.."
mode=${1:-run}
build=${WHARF_BUILD:-build}
jobs=${JOBS:-$(nproc)}

# Build dependencies (all from Debian), then the clients the tests drive.
BUILD_DEPS="build-essential cmake pkg-config libuv1-dev node-llhttp libssl-dev libzstd-dev zlib1g-dev
  liblmdb-dev nlohmann-json3-dev catch2 libldap-dev libarchive-dev libisal-dev libsqlite3-dev libpq-dev"
TEST_DEPS="skopeo podman buildah umoci uidmap curl util-linux slapd ldap-utils openssl notary chromium postgresql-15 haproxy
  ceph-mon ceph-osd radosgw"
# The fuzz step of `test` builds with clang 14 and its libFuzzer/sanitizer runtimes.
FUZZ_DEPS="clang libclang-rt-14-dev"

install() {
  missing=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "quickstart: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
}

# The web UI (core/ui) is built with npm's tools, installed from its lockfile here (the
# build itself downloads nothing). Debian's nodejs and npm, unless node is already there.
ui_install() {
  install nodejs
  command -v npm >/dev/null || install npm
  (cd core/ui && npm ci --no-audit --no-fund --loglevel=error)
}

configure_and_build() {
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$build" -j "$jobs"
}

case "$mode" in
  run)
    install $BUILD_DEPS curl
    ui_install
    configure_and_build -DWHARF_TESTS=OFF -DWHARF_BENCH=OFF
    data=${WHARF_DATA:-wharf-data}
    listen=${WHARF_LISTEN:-127.0.0.1:5000}
    edge_listen=${WHARF_EDGE_LISTEN:-127.0.0.1:5001}
    mkdir -p "$data"
    # The core first, then one edge joined to it.
    "$build/core/wharf-core" --config appliance/wharf-core.json --data-dir "$data/core" --listen "$listen" &
    core_pid=$!
    trap 'kill $core_pid ${edge_pid:-} 2>/dev/null; wait' INT TERM EXIT
    for _ in $(seq 100); do curl -s -o /dev/null "http://$listen/v2/" && break; sleep 0.1; done
    # The edge joins the core once (a join token from the core's API, as `wharfctl edge
    # add` makes them); afterwards $data/edge/edge.json holds its credential.
    set --
    if [ ! -f "$data/edge/edge.json" ]; then
      password=${WHARF_ADMIN_PASSWORD:-$(cat "$data/core/initial-admin-password" 2>/dev/null || true)}
      answer=$(curl -s -u "admin:$password" -H 'Content-Type: application/json' \
        -d '{"name":"site-1","site":"quickstart"}' "http://$listen/api/v1/edges")
      token=$(printf '%s' "$answer" | sed -n 's/.*"join_token":"\([^"]*\)".*/\1/p')
      [ -n "$token" ] || { echo "quickstart: cannot create a join token for the edge: $answer" >&2; exit 1; }
      set -- --core "http://$listen" --join-token "$token"
    fi
    "$build/edge/wharf-edge" "$@" --data-dir "$data/edge" --listen "$edge_listen" &
    edge_pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://$edge_listen/v2/" && break; sleep 0.1; done
    echo
    echo "wharf-core:  http://$listen        (data in $data/core, config appliance/wharf-core.json)"
    echo "Web UI:      http://$listen/ui/"
    echo "wharf-edge:  http://$edge_listen        (pull through it; cache in $data/edge)"
    if [ -f "$data/core/initial-admin-password" ]; then
      echo "Admin:       admin / $(cat "$data/core/initial-admin-password")"
    fi
    echo "Try:         skopeo login --tls-verify=false -u admin $listen"
    echo "             skopeo copy --dest-tls-verify=false oci:./layout:tag docker://$listen/admin/app:v1"
    echo "             skopeo copy --src-tls-verify=false --src-creds admin:PASSWORD docker://$edge_listen/admin/app:v1 oci:./copy:v1"
    echo "             $build/core/wharfctl login http://$listen -u admin"
    echo "Stop with Ctrl-C."
    echo
    wait
    ;;
  test)
    install $BUILD_DEPS $TEST_DEPS $FUZZ_DEPS
    ui_install
    configure_and_build -DWHARF_TESTS=ON -DWHARF_BENCH=ON -DWHARF_WERROR=ON
    (cd "$build" && ctest --output-on-failure --timeout 1500)
    # Fuzzing: every libFuzzer target over its committed seeds plus FUZZ_SECONDS (15) of
    # new inputs, in its own clang build (WHARF_FUZZ_BUILD, default build-fuzz); a crash
    # fails the run and leaves its input in build-fuzz/artifacts/.
    FUZZ_SECONDS=${FUZZ_SECONDS:-15} JOBS=$jobs bench/fuzz.sh 1 "${WHARF_FUZZ_BUILD:-build-fuzz}"
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
