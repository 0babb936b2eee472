#!/usr/bin/env bash
# Resolves mongo-java-server and its dependencies from Maven Central into the local
# Maven repository and writes their classpath to classpath.txt beside this script.
# Idempotent: rerunning only rewrites classpath.txt. Needs `mvn` and a JDK >= 17.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! command -v mvn >/dev/null 2>&1; then
  echo "fetch.sh: mvn not found on PATH (install Maven, e.g. apt-get install maven)" >&2
  exit 127
fi

tmp="classpath.txt.tmp.$$"
log="fetch.log.tmp.$$"
trap 'rm -f "$tmp" "$log"' EXIT

# Quiet on success; on failure show Maven's output (on stderr).
if ! mvn -q -B -Dstyle.color=never dependency:build-classpath -Dmdep.outputFile="$tmp" >"$log" 2>&1; then
  cat "$log" >&2
  echo "fetch.sh: maven could not resolve the dependencies of $here/pom.xml" >&2
  exit 1
fi

if [[ ! -s "$tmp" ]]; then
  echo "fetch.sh: maven produced an empty classpath" >&2
  exit 1
fi
mv -f "$tmp" classpath.txt
