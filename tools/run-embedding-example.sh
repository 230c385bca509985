#!/usr/bin/env bash
# Builds and tests examples/embedding, an outside Maven project that depends only on the mode-runtime and mode-cpu
# artifacts, against the repository REPO into which this build installed them (target/example-repo; never
# ~/.m2). Third-party artifacts (JUnit, Maven plugins) come from the Maven cache M2 (default ~/.m2/repository), read
# as a file:// mirror so that nothing is fetched from the network and nothing is written there.
#   tools/run-embedding-example.sh REPO [M2]
# ./mode test runs it in the tests module's integration-test phase, after the jars are packaged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(mkdir -p "$1" && cd "$1" && pwd)"
M2="${2:-$HOME/.m2/repository}"
SETTINGS="$REPO/../example-settings.xml"
cat > "$SETTINGS" <<XML
<settings>
  <mirrors>
    <mirror><id>maven-cache</id><mirrorOf>*</mirrorOf><url>file://$M2</url></mirror>
  </mirrors>
</settings>
XML
LOG="$REPO/../example-build.log"
rm -rf "$ROOT/examples/embedding/target"
if ! mvn -B -ntp -Dstyle.color=never -s "$SETTINGS" -Dmaven.repo.local="$REPO" \
    -f "$ROOT/examples/embedding/pom.xml" test >"$LOG" 2>&1; then
  grep -E '^\[ERROR\]|Tests run:|FAIL' "$LOG" | head -30 >&2
  echo "embedding example failed; the log is $LOG" >&2
  exit 1
fi
grep -E 'Tests run:' "$LOG" | tail -1
