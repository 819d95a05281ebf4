#!/usr/bin/env bash
# The machine prerequisites of falconet's Kafka broker (tests, demo, `falconet kafka up`):
# Java >= 17 and Maven (which downloads the official Kafka jars once); with --tests, also
# the real peers the test suite talks to: rsyslogd with its TLS driver (syslog sink) and
# containerd (runtime metadata publisher) - Debian packages rsyslog, rsyslog-gnutls,
# containerd. `make demo` runs it without, `make test` with.
#
# Quiet when all are present. When one is missing and this runs as root with apt-get,
# installs them (non-interactive); otherwise prints what to install and exits 1.
# Nothing is needed for Kafka when FALCONET_KAFKA_BOOTSTRAP names an existing cluster, or
# when FALCONET_SKIP_KAFKA=1 (the Kafka tests are then skipped if no broker can run);
# nothing for rsyslog when FALCONET_SKIP_RSYSLOG=1 (its tests are then skipped).
# rsyslog and containerd are only run by the tests (their binaries, on loopback ports and
# temporary sockets): they are installed without being started or enabled as services.
set -euo pipefail

MIN_JAVA=17
PACKAGES_HINT="openjdk-17-jre-headless maven"
RSYSLOG_PACKAGES="rsyslog rsyslog-gnutls containerd"
RSYSLOGD="${FALCONET_RSYSLOGD:-/usr/sbin/rsyslogd}"
status=0

rsyslog_problems() {
  local f found=""
  [[ -x "$RSYSLOGD" ]] || echo "rsyslogd not found ($RSYSLOGD)"
  for f in /usr/lib/*/rsyslog/lmnsd_{gtls,ossl}.so /usr/lib*/rsyslog/lmnsd_{gtls,ossl}.so; do
    if [[ -e "$f" ]]; then found="$f"; break; fi
  done
  [[ -n "$found" ]] || echo "rsyslog TLS driver not found (lmnsd_gtls.so or lmnsd_ossl.so)"
  command -v containerd >/dev/null 2>&1 || echo "containerd not found (runtime publisher test)"
}

if [[ "${1:-}" == "--tests" && "${FALCONET_SKIP_RSYSLOG:-}" != "1" ]]; then
  missing="$(rsyslog_problems)"
  if [[ -n "$missing" ]] && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "falconet prereqs: installing the test peers (rsyslog, containerd):" >&2
    echo "$missing" | sed 's/^/  - /' >&2
    export DEBIAN_FRONTEND=noninteractive
    # keep the package from starting rsyslog as the system logger (invoke-rc.d and
    # deb-systemd-invoke ask policy-rc.d; 101 = action not allowed)
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $RSYSLOG_PACKAGES >/dev/null || true
    if [[ -n "$policy" ]]; then rm -f "$policy"; fi
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --quiet rsyslog.service containerd.service 2>/dev/null || true
    fi
    missing="$(rsyslog_problems)"
    if [[ -z "$missing" ]]; then
      echo "falconet prereqs: installed $RSYSLOG_PACKAGES (not started as a service)" >&2
    fi
  fi
  if [[ -n "$missing" ]]; then
    {
      echo "falconet's tests need real peers (rsyslogd for the syslog sink, containerd):"
      echo "$missing" | sed 's/^/  - /'
      echo "install it (Debian/Ubuntu):  sudo apt-get install -y $RSYSLOG_PACKAGES"
      echo "or set FALCONET_SKIP_RSYSLOG=1 to skip this check (the rsyslog tests then skip)"
    } >&2
    status=1
  fi
fi

if [[ -n "${FALCONET_KAFKA_BOOTSTRAP:-}" || "${FALCONET_SKIP_KAFKA:-}" == "1" ]]; then
  exit "$status"
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
[[ -z "$missing" ]] && exit "$status"

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
    exit "$status"
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
