#!/usr/bin/env bash
# Terminology requests a terminology admin sends to a running server.
set -eu
BASE=${BASE:-http://127.0.0.1:8080/fhir}
curl -s "$BASE/metadata" | head -c 400; echo
curl -s "$BASE/CodeSystem/icd-10-cn-clinical/\$lookup?code=I25.103"; echo
curl -s "$BASE/CodeSystem/\$validate-code?url=icd-9-cm-3-cn-clinical&code=36.0700"; echo
curl -s "$BASE/ValueSet/\$expand?url=icd-10-cn-clinical&filter=%E5%86%A0%E5%BF%83%E7%97%85&count=5"; echo
curl -s "$BASE/ConceptMap/\$translate?system=icd-10-cn-clinical&code=R91.x00x003"; echo
curl -s -X POST "$BASE/CodeSystem/\$lookup" -H 'Content-Type: application/fhir+json' \
  -d '{"resourceType":"Parameters","parameter":[{"name":"coding","valueCoding":{"system":"icd-10-cn-clinical","code":"I48.x01"}}]}'; echo
