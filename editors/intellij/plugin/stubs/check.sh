#!/usr/bin/env bash
# Compiles the IntelliJ plugin's glue (../src/main/java) and core
# (../../core/src/main/java) with javac against the compile-only stand-ins
# in src/ (NOT the IntelliJ SDK, which these machines cannot download), then
# checks that every class plugin.xml and its optional config files name was
# compiled. It fails when the glue calls something the stand-ins do not
# declare, overrides a method with the wrong signature, leaves an abstract
# method unimplemented, or names a class that does not exist. It cannot tell
# whether the stand-ins match the real platform: each one cites where its
# signatures were checked.
#
# Usage: editors/intellij/plugin/stubs/check.sh [OUT_DIR]   (Java 17 javac, Debian's gson.jar)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugin="$(dirname "$here")"
core="$(dirname "$plugin")/core"
out="${1:-$(mktemp -d)}"
gson="${GSON_JAR:-/usr/share/java/gson.jar}"
[ -f "$gson" ] || { echo "no $gson: apt-get install libgoogle-gson-java (or set GSON_JAR)" >&2; exit 1; }
mkdir -p "$out/stubs" "$out/plugin"

find "$here/src" -name '*.java' > "$out/stubs.txt"
# The real signatures keep their raw types and serializable classes: so do the stand-ins.
javac --release 17 -Xlint:all,-serial,-rawtypes -Werror -d "$out/stubs" @"$out/stubs.txt"

find "$core/src/main/java" "$plugin/src/main/java" -name '*.java' > "$out/plugin.txt"
# -implicit:none: a stand-in is never compiled into the plugin's output.
javac --release 17 -Xlint:all,-serial -Werror -implicit:none -cp "$out/stubs:$gson" -d "$out/plugin" @"$out/plugin.txt"

missing=0
for xml in "$plugin"/src/main/resources/META-INF/*.xml; do
  for class in $(grep -oE '(implementation|class)="[A-Za-z0-9_.]+"' "$xml" | sed -E 's/.*="([^"]+)"/\1/'); do
    if [ ! -f "$out/plugin/${class//.//}.class" ]; then
      echo "$(basename "$xml") names $class, which was not compiled" >&2
      missing=1
    fi
  done
done
[ "$missing" = 0 ]
echo "plugin glue compiled against the stand-ins: $(grep -c . "$out/plugin.txt") sources, $(grep -c . "$out/stubs.txt") stand-ins"
