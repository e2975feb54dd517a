#!/usr/bin/env bash
# The demo: a fresh database from the bundled sample data, then every sample campaign run for real.
set -euo pipefail
BIN=${1:-.venv/bin}
AS_OF=${2:-2026-11-01}
crmlist() { "$BIN/crmlist" "$@"; }
start=$(date +%s%N)
rm -rf out/demo crmlist.duckdb crmlist.duckdb.wal
echo "== loading sample_data/ into crmlist.duckdb"
crmlist load customers sample_data/customers.csv
crmlist load products sample_data/products.csv
crmlist load purchases sample_data/purchases.csv
crmlist load suppressions sample_data/suppressions.csv
echo "== checking the campaigns in queries/"
crmlist check
echo "== preview of the win-back campaign"
crmlist preview winback --as-of "$AS_OF"
echo "== running every campaign as of $AS_OF"
crmlist run digital_tv briefcase_crosssell winback --out out/demo --as-of "$AS_OF"
echo "== closing the loop: responses to the win-back mailing, measured against its control group"
crmlist load responses sample_data/responses.csv
crmlist report winback --format table
end=$(date +%s%N)
echo
echo "Done in $(( (end - start) / 1000000 )) ms. Lists and letters:"
for dir in out/demo/*/*/; do
  echo "  $dir  (targets.csv, control.csv, waterfall.csv, letters/)"
done
echo "Look at one letter:  ls out/demo/winback/*/letters | head"
