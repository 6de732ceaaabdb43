#!/usr/bin/env bash
# Installs the external programs the test suite uses, from Debian's packages:
#   openscap-scanner + ssg-debian: `oscap` and the SCAP Security Guide's Debian content, to
#   produce real XCCDF/ARF result files for the OpenSCAP import tests (generated at test time,
#   never committed).
# And from PyPI:
#   taxii2-client: the OASIS TAXII 2.1 client, run against Rampart's TAXII server by a test.
# Idempotent; skips what is already installed. Needs root (as CI and developer machines are).
set -euo pipefail
need=()
command -v oscap >/dev/null 2>&1 || need+=(openscap-scanner)
[ -f /usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml ] || need+=(ssg-debian)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-test-deps: need root to install ${need[*]} (apt-get)" >&2
    exit 1
  fi
  echo "setup-test-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 -c 'import taxii2client' 2>/dev/null || {
  echo "setup-test-deps: installing taxii2-client (PyPI)" >&2
  python3 -m pip install -q --disable-pip-version-check taxii2-client==2.3.0
}
