#!/usr/bin/env bash
# Installs what reading PDFs needs, from pinned PyPI wheels, into DIR (default: the data
# directory's pdf/ folder, `$JOINTCODER_DATA_DIR/pdf` or ./data/pdf; the server reads it from
# the `pdf_dir` setting, JOINTCODER_PDF_DIR). Nothing is downloaded at build or run time: this
# script is the one step that fetches, and it checks every wheel's sha256 before unpacking.
#
#   libpdfium.so  PDFium (BSD-3-Clause; its third-party licences beside it), from pypdfium2's
#                 manylinux x86_64 wheel. PDFium build 6462, which jointcoder binds with the
#                 pdfium-render API of build 6406 (a subset of it).
#
# Usage: scripts/fetch-pdf.sh [DIR]
set -euo pipefail
dir="${1:-${JOINTCODER_PDF_DIR:-${JOINTCODER_DATA_DIR:-data}/pdf}}"
mkdir -p "$dir"
if [ -f "$dir/libpdfium.so" ] && [ -f "$dir/.installed" ] && grep -q "pypdfium2==4.30.0" "$dir/.installed"; then
  echo "PDF libraries already in $dir"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wheel=pypdfium2-4.30.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
sha=f1f78d2189e0ddf9ac2b7a9b9bd4f0c66f54d1389ff6c17e9fd9dc034d06eb3f
python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
  --python-version 3.11 --dest "$tmp" "pypdfium2==4.30.0"
echo "$sha  $tmp/$wheel" | sha256sum --check --quiet
python3 - "$tmp/$wheel" "$dir" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
info = "pypdfium2-4.30.0.dist-info/"
# The library, and the licences it ships under (dep5-wheel says which file is under which).
files = {"pypdfium2_raw/libpdfium.so": "libpdfium.so"}
files.update({info + n: n for n in ["BSD-3-Clause.txt", "Apache-2.0.txt", "CC-BY-4.0.txt", "LicenseRef-PdfiumThirdParty.txt", "dep5-wheel"]})
with zipfile.ZipFile(wheel) as z:
    for name, target in files.items():
        with z.open(name) as src, open(f"{out}/{target}", "wb") as dst:
            dst.write(src.read())
PY
echo "pypdfium2==4.30.0 $sha" > "$dir/.installed"
echo "PDF libraries installed in $dir: $(ls "$dir" | tr '\n' ' ')"
