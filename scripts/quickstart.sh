#!/usr/bin/env bash
# Quick start: build mirrord, start a stand-in "pod" (new namespaces with its
# own env, files, /etc/hosts and services on its loopback), and run a sample
# Python program inside it with `mirrord exec`. Needs root (namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --quiet
bin=target/release

echo "== without mirrord: the program sees this machine"
python3 examples/show_pod.py
echo
# The pod lives while this script holds its stdin open; it removes every
# trace of itself (namespaces, processes, its tmpfs root) when we exit.
coproc POD { exec "$bin/standin-pod"; }
read -r _ pid <&"${POD[0]}"
trap 'exec {POD[1]}>&-; wait "$POD_PID" 2>/dev/null || true' EXIT
echo "== with mirrord: the same program runs inside pod pid/$pid"
"$bin/mirrord" exec --target "pid/$pid" -- python3 examples/show_pod.py
echo
echo "== incoming: the pod's own HTTP server answers on the pod's port 8080"
nsenter -t "$pid" -n curl -s http://127.0.0.1:8080/
echo "== with mirrord exec --steal, a local server answers the pod's port 8080"
log=$(mktemp)
"$bin/mirrord" exec --steal --target "pid/$pid" -- \
    python3 tests/programs/http_echo_server.py 8080 >"$log" 2>/dev/null &
server=$!
for _ in $(seq 300); do grep -q listening "$log" && break; sleep 0.1; done
nsenter -t "$pid" -n curl -s http://127.0.0.1:8080/hello-from-the-pod
kill "$server"
wait "$server" 2>/dev/null || true
rm -f "$log"
echo "== the local server is gone: the pod answers for itself again"
nsenter -t "$pid" -n curl -s http://127.0.0.1:8080/
