#!/usr/bin/env bash
# What the tests need beyond cargo, installed when missing (idempotent):
# - the external FHIR R4 validator and the Python FHIR clients (tests/setup_validator.sh, PyPI);
# - the JavaScript FHIR clients (tests/setup_clients.sh, npm);
# - PDFium, ONNX Runtime and the OCR models for the PDF tests (scripts/fetch-pdf.sh into
#   target/pdf, pinned PyPI wheels), and a CJK font (Debian's fonts-wqy-microhei);
# - Debian's chromium, which the workbench's browser tests drive with playwright-core (npm);
# - PostgreSQL's server programs (Debian's package), whose throwaway cluster the PostgreSQL
#   store's tests start themselves (or set JOINTCODER_TEST_POSTGRES_URL to use a server of yours).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup_validator.sh
tests/setup_clients.sh
scripts/fetch-pdf.sh target/pdf
# A CJK font, so that PDFium can draw the test PDFs' Chinese (their font is not embedded, as in
# iText-based HIS exports) when a test renders a page to make a scan of it.
if [ ! -d /usr/share/fonts/truetype/wqy ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null
  echo "CJK font installed"
fi
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  echo "Chromium installed"
fi
if [ -z "${JOINTCODER_TEST_POSTGRES_URL:-}" ] && { ! command -v psql >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  echo "PostgreSQL server programs installed"
fi
