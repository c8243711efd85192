#!/usr/bin/env bash
# Installs the Python side of the tests into target/fhir-validator: the external FHIR R4
# validator (fhir.resources 6.4.0, which models FHIR 4.0.1) and the client libraries the
# conformance suite drives (fhirpy, fhirclient) and reportlab for the test PDFs, all pinned in
# tests/clients/requirements.txt.
# Idempotent: reinstalls only when the pins changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/fhir-validator
pins=tests/clients/requirements.txt
if [ -f "$venv/.pins" ] && cmp -s "$pins" "$venv/.pins" && "$venv/bin/python" -c "import fhir.resources, fhirpy, fhirclient, reportlab" 2>/dev/null; then
  exit 0
fi
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r "$pins"
cp "$pins" "$venv/.pins"
"$venv/bin/python" -c "import fhir.resources; print('FHIR validator and Python clients ready:', fhir.resources.__fhir_version__)"
