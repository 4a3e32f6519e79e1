#!/usr/bin/env bash
# steerlab replay against tshark field extraction, on the same generated capture.
#
#   scripts/bench-replay-vs-tshark.sh [PACKETS]      (default 1000000)
#
# Builds steerlab in release mode, writes a synthetic capture of PACKETS packets (mixed
# DNS, TLS with split ClientHellos, HTTP and UDP flows: `steerlab replay F
# --write-synthetic N`, the same file every time), then times
#   tshark -r F -T fields -e frame.number -e ip.src -e ip.dst
#          -e tls.handshake.extensions_server_name -e dns.qry.name
# and `steerlab replay F --json`, each run once with output to /dev/null, and prints the
# packets per second of both, their peak memory, and the ratio. Needs tshark and
# /usr/bin/time (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."

packets="${1:-1000000}"
for tool in tshark /usr/bin/time bc; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
file="$dir/synthetic.pcap"

cargo build --release --quiet --bin steerlab
bin="${CARGO_TARGET_DIR:-target}/release/steerlab"
"$bin" replay "$file" --write-synthetic "$packets"
echo "capture: $packets packets, $(du -h "$file" | cut -f1)"

# Runs a command with its output discarded; prints "SECONDS PEAK_KB".
measure() {
  /usr/bin/time -f "%e %M" -o "$dir/time" "$@" >/dev/null 2>"$dir/stderr" || {
    cat "$dir/stderr" >&2
    exit 1
  }
  cat "$dir/time"
}

read -r t_secs t_kb < <(measure tshark -r "$file" -T fields -e frame.number -e ip.src \
  -e ip.dst -e tls.handshake.extensions_server_name -e dns.qry.name)
read -r s_secs s_kb < <(measure "$bin" replay "$file" --json)

rate() { echo "scale=0; $packets / $1" | bc -l; }
t_rate=$(rate "$t_secs")
s_rate=$(rate "$s_secs")
printf '%-34s %8ss %12s packets/s %8s MB peak\n' "tshark -T fields" "$t_secs" "$t_rate" "$((t_kb / 1024))"
printf '%-34s %8ss %12s packets/s %8s MB peak\n' "steerlab replay --json" "$s_secs" "$s_rate" "$((s_kb / 1024))"
echo "ratio: steerlab replay is $(echo "scale=1; $s_rate / $t_rate" | bc -l)x tshark"
