#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 600), one after the other,
# and prints a table: target, seconds, executions, executions per second, corpus size,
# crashes. New inputs go to fuzz/work/<target> (git-ignored); crashes to
# fuzz/artifacts/<target>/. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`).
#
#   scripts/fuzz-all.sh            # 10 minutes per target, about an hour in all
#   scripts/fuzz-all.sh 60 pcap_read scenario_load
#
# The table is also written to fuzz/work/summary.txt. The exit status is 1 when any
# target found a crash (its libFuzzer log is fuzz/work/<target>.log).
set -euo pipefail

seconds="${1:-600}"
shift || true
cd "$(dirname "$0")/../fuzz"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

export RUSTC_BOOTSTRAP=1
echo "building ${#targets[@]} targets (release, no sanitizer) ..." >&2
cargo fuzz build --sanitizer none >&2
# Run the binaries built above, so that editing the project meanwhile does not rebuild.
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

mkdir -p work
summary=work/summary.txt
printf '%-18s %8s %12s %10s %8s %8s %6s\n' target seconds executions exec/s corpus crashes slow | tee "$summary"
failed=0
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  log="work/$t.log"
  echo "fuzzing $t for ${seconds}s (log: fuzz/$log) ..." >&2
  status=0
  "$bin/$t" "work/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "work/$t" -type f | wc -l)
  # libFuzzer also writes slow-unit-* files (an input over 10 s, which a loaded machine
  # can cause): reported apart, not findings.
  crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  slow=$(find "artifacts/$t" -type f -name 'slow-unit-*' | wc -l)
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
  fi
  printf '%-18s %8s %12s %10s %8s %8s %6s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" "$slow" | tee -a "$summary"
done
exit "$failed"
