#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS seconds each (default 60) and prints, per target, the executions,
# the corpus size and the findings. Seeds come from the repository's own files (seeds.py); the inputs of
# past findings, kept in Tests/Fuzz/Regressions/<Target>/, are run first by every target. Findings (crash,
# leak, timeout, out-of-memory inputs) land in .build/fuzz/findings/<Target>/; the exit status is 1 if any.
#   Tests/Fuzz/run.sh 300            # five minutes per target
#   TARGETS="BPEEncode" Tests/Fuzz/run.sh 30    # some targets (SKIP_BUILD=1: use the binaries as built)
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.build/fuzz"
[ -n "${SKIP_BUILD:-}" ] || "$root/Tests/Fuzz/build.sh"
seeds="$out/seeds-$$"
python3 "$root/Tests/Fuzz/seeds.py" "$root" "$seeds"
targets=${TARGETS:-$(cd "$root/Tests/Fuzz/Targets" && ls *.swift | sed 's/\.swift$//')}
status=0
# Foundation leaks a buffer reading an empty file (not our code); the Swift backtracer only slows crashes down.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} SWIFT_BACKTRACE=enable=no
summary="$out/summary-$$.txt"
printf '%-20s %12s %8s %9s %s\n' target executions exec/s corpus findings > "$summary"
for t in $targets; do
  corpus="$out/corpus/$t" findings="$out/findings/$t/" regressions="$root/Tests/Fuzz/Regressions/$t"
  mkdir -p "$corpus" "$findings" "$regressions"
  cp -n "$seeds/$t/"* "$corpus/" 2>/dev/null || true
  log="$out/$t.log"
  case $t in BPEEncode|SentencePieceEncode|ChatTemplate) maxlen=2048 ;; *) maxlen=65536 ;; esac
  # A template at the 200k-statement limit (Regressions/ChatTemplate/nested-loops) takes ~10 s under ASan.
  case $t in ChatTemplate) timeout=40 ;; *) timeout=10 ;; esac
  # -rss_limit_mb: no input may make a parser hold 2 GB; -timeout: none may take 10 s.
  "$out/bin/$t" "$corpus" "$regressions" -max_total_time="$seconds" -timeout=$timeout -report_slow_units=$timeout -rss_limit_mb=2048 -max_len=$maxlen \
    -artifact_prefix="$findings" -print_final_stats=1 -detect_leaks=0 > "$log" 2>&1 || true
  # (grep finding nothing is an answer here, not an error: `|| true` keeps pipefail from ending the run.)
  execs=$( (grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" || true) | grep -o '[0-9]*$' | tail -1 || true)
  rate=$( (grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" || true) | grep -o '[0-9]*$' | tail -1 || true)
  # slow-unit-* files are inputs that took long but finished: listed, not failures.
  found=$( (ls "$findings" | grep -v '^slow-unit-' || true) | wc -l)
  printf '%-20s %12s %8s %9s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$(ls "$corpus" | wc -l)" "$found" >> "$summary"
  if [ "$found" != 0 ] || [ -z "$execs" ]; then status=1; echo "$t: see $log and $findings" >&2; fi
done
rm -rf "$seeds"
cat "$summary"
exit $status
