"""Validates FHIR R4 JSON resources with the external `fhir.resources` (4.0.1) models.

Usage: validate_r4.py FILE...  Each FILE holds one resource; a Bundle's entries are validated
as part of it. Exits non-zero, naming the file and the error, on the first invalid one.
Installed by .ci/run (fhir.resources 6.4.0 with pydantic 1.10).
"""
import json
import sys

from fhir.resources import construct_fhir_element

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        construct_fhir_element(data["resourceType"], data)
    except Exception as e:  # pydantic.ValidationError and lookup errors alike
        print(f"{path}: {data.get('resourceType')}: {e}")
        sys.exit(1)
print(f"{len(sys.argv) - 1} resource(s) valid")
