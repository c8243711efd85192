#!/usr/bin/env bash
# Code a discharge document Bundle on a running server (jointcoder serve).
set -eu
BASE=${BASE:-http://127.0.0.1:8080/fhir}
curl -s -X POST "$BASE/Bundle/\$code" -H 'Content-Type: application/fhir+json' \
  --data-binary @"$(dirname "$0")/requests/discharge-bundle.json"
