#!/usr/bin/env bash
# Installs the external FHIR R4 validator the tests use (Python fhir.resources 6.4.0, which
# models FHIR 4.0.1, with pydantic 1.10) into target/fhir-validator. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/fhir-validator
if "$venv/bin/python" -c "import fhir.resources; assert fhir.resources.__fhir_version__ == '4.0.1'" 2>/dev/null; then
  exit 0
fi
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "fhir.resources==6.4.0" "pydantic==1.10.13"
"$venv/bin/python" -c "import fhir.resources; print('FHIR validator ready:', fhir.resources.__fhir_version__)"
