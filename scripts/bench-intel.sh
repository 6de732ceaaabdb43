#!/usr/bin/env bash
# The threat-intel benchmark on the generated 5 M set plus every real feed fixture
# (docs/performance.md; stix/bundle.json is a JSON schema, not a bundle, and is left out). Extra arguments go to `rampart bench intel`, e.g. --json.
# RAMPART_FIXTURES names the fixture tree (default: ../shared/fixtures next to the checkout);
# the files are read from there, never copied.
set -euo pipefail
cd "$(dirname "$0")/.."
fx="${RAMPART_FIXTURES:-$(cd .. && pwd)/shared/fixtures}/intel"
[ -d "$fx" ] || { echo "bench-intel: no fixture tree at $fx (set RAMPART_FIXTURES)" >&2; exit 2; }
feeds=(
  urlhaus-csv=abusech/urlhaus_csv_recent.excerpt.csv
  urlhaus-json=abusech/elastic_test-abusechurl-fulljson.log
  threatfox-csv=abusech/threatfox_csv_full.excerpt.csv
  threatfox-json=abusech/elastic_test-threatfox-ndjson.excerpt.log
  feodo-csv=abusech/feodo_ipblocklist_csv.excerpt_2021.csv
  malwarebazaar-csv=abusech/malwarebazaar_csv_full.dump_20260226.csv
  sslbl-csv=abusech/sslbl_sslblacklist_1.csv
  kev-json=kev/known_exploited_vulnerabilities.json
  kev-csv=kev/known_exploited_vulnerabilities.head5.csv
  otx-json=other/intelmq_alienvault_test_parser_otx.data
  otx-json=other/elastic_test-otx-sample-ndjson.excerpt.log
  plain=other/cinsscore_cinsscore_sample.txt
  plain=other/ipsum_ipsum_level_8_sample.txt
  plain=other/vxvault_vxvault_sample.txt
  openphish=other/intelmq_openphish_feed.txt
  spamhaus-drop=other/intelmq_spamhaus_drop.txt
  spamhaus-drop=other/intelmq_spamhaus_asndrop.txt
  csv=other/viriback_dump.csv
  misp-event=misp/57c4445b-c548-4654-af0b-4be3950d210f.json
  misp-event=misp/misp_event.json
  stix=stix/poisonivy.json
  stix=stix/indicator-for-c2-ip-address.json
  stix=stix/indicators-for-C2-with-COA.json
  stix=stix/indicator-to-campaign-relationship.json
  stix=stix/infrastructure.json
  stix=stix/malicious-email-indicator-with-attachment.json
  stix=misp/stix2.json
)
args=()
for f in "${feeds[@]}"; do args+=(--feed "${f%%=*}=$fx/${f#*=}"); done
cargo build --release --locked -p rampart
exec ./target/release/rampart bench intel "${args[@]}" "$@"
