#!/usr/bin/env bash
# Installs the external programs the test suite uses, from Debian's packages:
#   openscap-scanner + ssg-debian: `oscap` and the SCAP Security Guide's Debian content, to
#   produce real XCCDF/ARF result files for the OpenSCAP import tests (generated at test time,
#   never committed).
#   bind9-utils: `named-checkzone`, which must load the RPZ export.
#   chromium: the browser the dashboard test drives (with fonts-dejavu-core for its text).
#   poppler-utils: `pdftotext`, `pdffonts` and `pdftoppm` read and render the PDF reports.
#   prometheus: `promtool` lints a real scrape of /metrics and checks and unit-tests the alert
#   rules in deploy/; the `prometheus` server itself scrapes a test server over TLS and
#   evaluates those rules against it (started by the test, never as a service).
#   rsyslog + rsyslog-gnutls: `rsyslogd`, started by a test (never as a service), receives the
#   syslog event destinations over UDP, TCP and TLS and parses them with its RFC 5424 parser.
#   suricata (from bookworm-backports, which this script adds to apt's sources): loads and runs
#   the Suricata rule export over a pcap of real conversations.
# And from PyPI:
#   taxii2-client: the OASIS TAXII 2.1 client, run against Rampart's TAXII server by a test.
#   scapy: writes the pcap the Suricata tests run the exported rules over.
#   stix2-validator + stix2: the OASIS validator and library judge the STIX export.
#   schemathesis: tests the served OpenAPI document against the running server; in its own
#   virtual environment (/opt/rampart-test/schemathesis) so its dependencies cannot clash
#   with the STIX tools'.
#   PyJWT and jwcrypto: two independent JOSE libraries verify attestations from the published
#   JWKS alone; in their own virtual environment (/opt/rampart-test/jose).
#   compliance-trestle 3.12.4 (IBM's OSCAL library; its models are OSCAL 1.1.3): loads and
#   validates the OSCAL assessment results; in its own virtual environment
#   (/opt/rampart-test/trestle), as it pins its own pydantic.
#   confluent-kafka 2.16.1 (its wheel carries librdkafka 2.16): starts librdkafka's mock
#   cluster, a real Kafka-protocol broker, for the Kafka destination test and reads back what
#   Rampart produced (tests/kafka/broker.py); in /opt/rampart-test/kafka.
#   aiosmtpd 1.4.6 (the Python project's SMTP server): receives the alert e-mails over
#   STARTTLS and TLS with authentication (tests/smtp/server.py); in /opt/rampart-test/smtp.
# And from the npm registry, with the machine's Node.js:
#   oidc-provider (panva, OpenID Certified): the OpenID provider the OIDC login tests start, in
#   /opt/rampart-test/oidc (tests/oidc/provider.mjs imports it from there).
#   playwright-core (drives the Chromium above; never downloads a browser of its own) and
#   axe-core (Deque's accessibility rules), in /opt/rampart-test/ui for tests/ui/browse.mjs.
# Idempotent; skips what is already installed. Needs root (as CI and developer machines are).
set -euo pipefail
need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-test-deps: need root to install $* (apt-get)" >&2
    exit 1
  fi
}
export DEBIAN_FRONTEND=noninteractive
updated=
need=()
command -v oscap >/dev/null 2>&1 || need+=(openscap-scanner)
[ -f /usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml ] || need+=(ssg-debian)
command -v named-checkzone >/dev/null 2>&1 || need+=(bind9-utils)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v rsyslogd >/dev/null 2>&1 || need+=(rsyslog)
[ -n "$(find /usr/lib -name lmnsd_gtls.so 2>/dev/null | head -1)" ] || need+=(rsyslog-gnutls)
if [ ${#need[@]} -gt 0 ]; then
  need_root "${need[*]}"
  echo "setup-test-deps: installing ${need[*]}" >&2
  apt-get update -qq
  updated=1
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Suricata 7 is only in bookworm-backports (bookworm itself has 6).
if ! command -v suricata >/dev/null 2>&1; then
  need_root suricata
  backports=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The same mirror as the machine's own bookworm sources.
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    if [ -z "$mirror" ]; then
      echo "setup-test-deps: no bookworm mirror found in apt's sources to add bookworm-backports" >&2
      exit 1
    fi
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" >"$backports"
    updated=
  fi
  echo "setup-test-deps: installing suricata (bookworm-backports)" >&2
  [ -n "$updated" ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends -t bookworm-backports suricata >/dev/null
fi
python3 -c 'import scapy' 2>/dev/null || {
  echo "setup-test-deps: installing scapy (PyPI)" >&2
  python3 -m pip install -q --disable-pip-version-check scapy==2.6.1
}
python3 -c 'import stix2validator, stix2' 2>/dev/null || {
  echo "setup-test-deps: installing stix2-validator and stix2 (PyPI)" >&2
  python3 -m pip install -q --disable-pip-version-check stix2-validator==3.3.2 stix2==3.0.2
}
python3 -c 'import taxii2client' 2>/dev/null || {
  echo "setup-test-deps: installing taxii2-client (PyPI)" >&2
  python3 -m pip install -q --disable-pip-version-check taxii2-client==2.3.0
}
schemathesis=/opt/rampart-test/schemathesis/bin/schemathesis
"$schemathesis" --version 2>/dev/null | grep -q '4.32.5' || {
  echo "setup-test-deps: installing schemathesis (PyPI, own virtual environment)" >&2
  python3 -m venv /opt/rampart-test/schemathesis
  /opt/rampart-test/schemathesis/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
}
jose=/opt/rampart-test/jose
"$jose/bin/python" -c 'import jwt, jwcrypto.jwt; assert jwt.__version__ == "2.10.1"' 2>/dev/null || {
  echo "setup-test-deps: installing PyJWT and jwcrypto (PyPI, own virtual environment)" >&2
  python3 -m venv "$jose"
  "$jose/bin/pip" install -q --disable-pip-version-check 'PyJWT[crypto]==2.10.1' jwcrypto==1.5.6
}
trestle=/opt/rampart-test/trestle
"$trestle/bin/python" -c 'import trestle; assert trestle.__version__ == "3.12.4"' 2>/dev/null || {
  echo "setup-test-deps: installing compliance-trestle (PyPI, own virtual environment)" >&2
  python3 -m venv "$trestle"
  "$trestle/bin/pip" install -q --disable-pip-version-check compliance-trestle==3.12.4
}
kafka=/opt/rampart-test/kafka
"$kafka/bin/python" -c 'import confluent_kafka, importlib.metadata as m; assert m.version("confluent-kafka") == "2.16.1"' 2>/dev/null || {
  echo "setup-test-deps: installing confluent-kafka (PyPI, own virtual environment)" >&2
  python3 -m venv "$kafka"
  "$kafka/bin/pip" install -q --disable-pip-version-check confluent-kafka==2.16.1
}
smtp=/opt/rampart-test/smtp
"$smtp/bin/python" -c 'import aiosmtpd, importlib.metadata as m; assert m.version("aiosmtpd") == "1.4.6"' 2>/dev/null || {
  echo "setup-test-deps: installing aiosmtpd (PyPI, own virtual environment)" >&2
  python3 -m venv "$smtp"
  "$smtp/bin/pip" install -q --disable-pip-version-check aiosmtpd==1.4.6
}
oidc=/opt/rampart-test/oidc
grep -qs '"version": "9.13.3"' "$oidc/node_modules/oidc-provider/package.json" || {
  echo "setup-test-deps: installing oidc-provider (npm)" >&2
  mkdir -p "$oidc"
  npm install --prefix "$oidc" --no-audit --no-fund --silent oidc-provider@9.13.3
}
ui=/opt/rampart-test/ui
grep -qs '"version": "1.65.2"' "$ui/node_modules/playwright-core/package.json" \
  && grep -qs '"version": "4.14.1"' "$ui/node_modules/axe-core/package.json" || {
  echo "setup-test-deps: installing playwright-core and axe-core (npm)" >&2
  mkdir -p "$ui"
  npm install --prefix "$ui" --no-audit --no-fund --silent playwright-core@1.65.2 axe-core@4.14.1
}
