#!/usr/bin/env bash
# Installs every test dependency on a fresh Debian 12 machine (as root) and
# runs the whole suite: formatting, lints, schema drift, unit tests and the
# end-to-end tests against stand-in pods.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v iptables >/dev/null || need_apt+=(iptables)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v node >/dev/null || need_apt+=(nodejs)
command -v curl >/dev/null || need_apt+=(curl)
# A real kubectl drives the Kubernetes test API server (tests/tests/kube_api.rs).
command -v kubectl >/dev/null || need_apt+=(kubernetes-client)
# Debug adapters for the `mirrord dap` tests.
command -v lldb-vscode-14 >/dev/null || need_apt+=(lldb)
command -v go >/dev/null || need_apt+=(golang-go)
command -v dlv >/dev/null || need_apt+=(delve)
# The IntelliJ plugin's core: Maven, JUnit 5, Gson and Maven's plugins from
# Debian's local repository (/usr/share/maven-repo; no network).
command -v mvn >/dev/null || need_apt+=(maven)
for pkg in junit5 libgoogle-gson-java libsurefire-java libmaven-compiler-plugin-java \
  libmaven-resources-plugin-java libmaven-jar-plugin-java; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

python3 -c 'import debugpy' 2>/dev/null || python3 -m pip install --quiet debugpy
# The npm DAP and LSP clients the `mirrord dap` and `mirrord ide` tests drive them with.
(cd tests/npm && npm ci --no-audit --no-fund --silent)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# mirrord-sip's fuzz targets are a workspace of their own (`cargo fuzz`
# runs them on nightly): kept formatted and lint-clean here, so they still
# build when someone fuzzes.
cargo fmt --manifest-path sip/fuzz/Cargo.toml -- --check
cargo clippy --manifest-path sip/fuzz/Cargo.toml --all-targets --quiet -- -D warnings
# The end-to-end tests run the workspace's binaries (mirrord, mirrord-agent,
# libmirrord_layer.so, standin-pod): build them all first.
cargo build --workspace --quiet
# The VS Code extension: strict TypeScript, eslint, mocha (its client tests
# run the mirrord just built: MIRRORD_BIN, else target/debug/mirrord) and a
# VSIX that carries that mirrord (with its layer and agent, stripped) in
# bin/, checked in the VSIX's own listing.
(cd editors/vscode && npm ci --no-audit --no-fund --silent && npm run lint && npm test && npm run package -- --require-bin)
# The IntelliJ core's unit tests (its integration test against the real
# service and a stand-in pod runs from tests/tests/intellij.rs below); mvn
# fails on any failed Surefire test.
(cd editors/intellij/core && mvn -q -s settings.xml test)
# The IntelliJ Platform glue, compiled with javac against compile-only
# stand-ins of the platform API it uses (editors/intellij/plugin/stubs), not
# the real SDK: catches a wrong override, a missing method or a class named
# in plugin.xml that does not exist.
editors/intellij/plugin/stubs/check.sh
cargo test --workspace --quiet -- --test-threads 2
