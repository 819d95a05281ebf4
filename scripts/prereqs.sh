#!/usr/bin/env bash
# The machine prerequisites of falconet's Kafka broker (tests, demo, `falconet kafka up`):
# Java >= 17 and Maven (which downloads the official Kafka jars once).
#
# Quiet when both are present. When one is missing and this runs as root with apt-get,
# installs them (non-interactive); otherwise prints what to install and exits 1.
# Nothing is needed when FALCONET_KAFKA_BOOTSTRAP names an existing cluster, or when
# FALCONET_SKIP_KAFKA=1 (the Kafka tests are then skipped if no broker can run).
set -euo pipefail

MIN_JAVA=17
PACKAGES_HINT="openjdk-17-jre-headless maven"

if [[ -n "${FALCONET_KAFKA_BOOTSTRAP:-}" || "${FALCONET_SKIP_KAFKA:-}" == "1" ]]; then
  exit 0
fi

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME/bin/java"
  else
    command -v java || true
  fi
}

# major version of a java executable: 17 for "17.0.15", 8 for "1.8.0_412"; empty if none
java_major() {
  local java v
  java="$(java_bin)"
  [[ -n "$java" ]] || return 0
  v="$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9][0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n1 || true)"
  set -- $v
  if [[ "${1:-}" == "1" ]]; then echo "${2:-0}"; else echo "${1:-}"; fi
}

problems() {
  local major
  major="$(java_major)"
  if [[ -z "$major" ]]; then
    echo "Java >= $MIN_JAVA not found (no java on PATH, JAVA_HOME unset)"
  elif (( major < MIN_JAVA )); then
    echo "Java $major found at $(java_bin); Kafka needs Java >= $MIN_JAVA"
  fi
  command -v mvn >/dev/null 2>&1 || echo "Maven not found (no mvn on PATH)"
}

missing="$(problems)"
[[ -z "$missing" ]] && exit 0

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "falconet prereqs: installing Java and Maven for the Kafka broker:" >&2
  echo "$missing" | sed 's/^/  - /' >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # openjdk-17 where the release has it (Debian 12, Ubuntu 22.04/24.04), else a newer one
  jdk=""
  for pkg in openjdk-17-jre-headless openjdk-21-jre-headless openjdk-25-jre-headless; do
    if apt-cache show "$pkg" >/dev/null 2>&1; then jdk="$pkg"; break; fi
  done
  apt-get install -y -qq --no-install-recommends ${jdk:-default-jre-headless} maven >/dev/null
  missing="$(problems)"
  if [[ -z "$missing" ]]; then
    echo "falconet prereqs: installed ${jdk:-default-jre-headless} and maven" >&2
    exit 0
  fi
  echo "falconet prereqs: still missing after apt-get install:" >&2
  echo "$missing" | sed 's/^/  - /' >&2
  echo "select Java >= $MIN_JAVA with 'update-alternatives --config java' or set JAVA_HOME" >&2
  exit 1
fi

{
  echo "falconet needs Java >= $MIN_JAVA and Maven to run its Kafka broker (tests, demo):"
  echo "$missing" | sed 's/^/  - /'
  echo "install them (Debian/Ubuntu):  sudo apt-get install -y $PACKAGES_HINT"
  echo "or set FALCONET_KAFKA_BOOTSTRAP=host:port to use an existing Kafka cluster"
} >&2
exit 1
