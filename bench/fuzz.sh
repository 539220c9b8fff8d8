#!/bin/bash
# Fuzzing: builds the libFuzzer targets of tests/fuzz/ (clang, -fsanitize=fuzzer,address,
# undefined) and runs each for MINUTES, starting from its committed seeds.
#
#   bench/fuzz.sh [MINUTES] [BUILD_DIR]     (default: 1 minute per target, build-fuzz)
#
# BUILD_DIR is configured with CC=clang CXX=clang++ -DWHARF_FUZZ=ON when it is not yet
# (WHARF_TESTS=ON only because tests/CMakeLists.txt is where tests/fuzz/ is added; only
# the fuzz_all target is built). Each target works in BUILD_DIR/corpus/<name>/ (the
# committed seeds of tests/fuzz/corpus/<name>/ are copied in; what the fuzzer finds stays
# there for the next run); crashes, timeouts and leaks are saved to
# BUILD_DIR/artifacts/<name>/ and the full output to BUILD_DIR/logs/<target>.log.
# Prints per target the executions (stat::number_of_executed_units), the new inputs
# found and whether it crashed; exits non-zero if one did.
#
# Environment: FUZZ_SECONDS (overrides MINUTES; CI uses 15), TARGETS (a subset, e.g.
# TARGETS="fuzz_token fuzz_cron"), JOBS (build jobs, default nproc), FUZZ_ARGS (more
# libFuzzer flags, e.g. FUZZ_ARGS=-jobs=2 or -max_len=65536), CC/CXX (default clang/clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-1}
build=${2:-build-fuzz}
seconds=${FUZZ_SECONDS:-$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')}
jobs=${JOBS:-$(nproc)}
all_targets="fuzz_http_request fuzz_manifest fuzz_token fuzz_json_body fuzz_cron fuzz_edge_fill fuzz_layer fuzz_osv fuzz_tuf"
targets=${TARGETS:-$all_targets}

start=$(date +%s)
if ! grep -qs '^WHARF_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "fuzz: configuring $build (clang, WHARF_FUZZ=ON)"
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWHARF_FUZZ=ON -DWHARF_TESTS=ON -DWHARF_BENCH=OFF >/dev/null
else
  cmake "$build" >/dev/null  # picks up targets added since it was configured
fi
echo "fuzz: building fuzz_all in $build (-j $jobs)"
cmake --build "$build" -j "$jobs" --target fuzz_all
built=$(date +%s)
echo "fuzz: build took $((built - start)) s; running each target for $seconds s"

mkdir -p "$build/logs"
crashed=()
printf '\n%-18s %12s %9s %6s %7s  %s\n' TARGET EXECUTIONS EXEC/S NEW CORPUS RESULT
for t in $targets; do
  name=${t#fuzz_}
  bin="$build/tests/fuzz/$t"
  seeds="tests/fuzz/corpus/$name"
  work="$build/corpus/$name"
  artifacts="$build/artifacts/$name"
  log="$build/logs/$t.log"
  [ -x "$bin" ] || { echo "fuzz: no $bin" >&2; exit 2; }
  mkdir -p "$work" "$artifacts"
  [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  rc=0
  # -timeout: one input running 30 s is a hang (the targets run in milliseconds).
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2560 \
    -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_ARGS:-} "$work" >"$log" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  execs=$(stat number_of_executed_units)
  rate=$(stat average_exec_per_sec)
  new=$(stat new_units_added)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    crashed+=("$t")
    what=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^(]*|runtime error: .*|fuzz invariant violated: .{0,100}' "$log" || true)
    input=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    result="CRASH (exit $rc): ${what:-see $log}${input:+; input $input}"
  fi
  printf '%-18s %12s %9s %6s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${new:-?}" "$corpus" "$result"
done
end=$(date +%s)
echo
echo "fuzz: build $((built - start)) s, runs $((end - built)) s, total $((end - start)) s; logs in $build/logs/"
if [ "${#crashed[@]}" -gt 0 ]; then
  echo "fuzz: FAILED: ${crashed[*]} (inputs in $build/artifacts/; reproduce with $build/tests/fuzz/<target> <input>)" >&2
  exit 1
fi
