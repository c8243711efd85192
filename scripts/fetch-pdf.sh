#!/usr/bin/env bash
# Installs what reading PDFs needs, from pinned PyPI wheels, into DIR (default: the data
# directory's pdf/ folder, `$JOINTCODER_DATA_DIR/pdf` or ./data/pdf; the server reads it from
# the `pdf_dir` setting, JOINTCODER_PDF_DIR). Nothing is downloaded at build or run time: this
# script is the one step that fetches, and it checks every wheel's sha256 before unpacking
# only the files below, with their licences:
#
#   libpdfium.so      PDFium (BSD-3-Clause; third-party licences beside it), from pypdfium2's
#                     manylinux x86_64 wheel: build 6462, bound with pdfium-render's 6406 API.
#   libonnxruntime.so ONNX Runtime 1.22.1 (MIT), from the onnxruntime wheel, for OCR.
#   PP-OCRv6_det_small.onnx, PP-OCRv6_rec_small.onnx, ch_ppocr_mobile_v2.0_cls_mobile.onnx
#                     PaddleOCR's PP-OCRv6 text detection and recognition and its text-line
#                     orientation classifier (Apache-2.0), from the rapidocr wheel; the
#                     recognizer carries its character list.
#
# Usage: scripts/fetch-pdf.sh [DIR]
set -euo pipefail
dir="${1:-${JOINTCODER_PDF_DIR:-${JOINTCODER_DATA_DIR:-data}/pdf}}"
stamp="pypdfium2==4.30.0 onnxruntime==1.22.1 rapidocr==3.10.0 (det, rec, cls)"
mkdir -p "$dir"
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$stamp" ]; then
  echo "PDF libraries already in $dir"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# name==version  wheel file  sha256
fetch() {
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 --platform any --python-version 3.11 --dest "$tmp" "$1"
  echo "$3  $tmp/$2" | sha256sum --check --quiet
}
fetch pypdfium2==4.30.0 pypdfium2-4.30.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
  f1f78d2189e0ddf9ac2b7a9b9bd4f0c66f54d1389ff6c17e9fd9dc034d06eb3f
fetch onnxruntime==1.22.1 onnxruntime-1.22.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl \
  f6effa1299ac549a05c784d50292e3378dbbf010346ded67400193b09ddc2f04
fetch rapidocr==3.10.0 rapidocr-3.10.0-py3-none-any.whl \
  2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050

python3 - "$tmp" "$dir" <<'PY'
import sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wanted = {
    "pypdfium2-4.30.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": {
        "pypdfium2_raw/libpdfium.so": "libpdfium.so",
        **{f"pypdfium2-4.30.0.dist-info/{n}": f"pdfium-{n}" for n in
           ["BSD-3-Clause.txt", "Apache-2.0.txt", "CC-BY-4.0.txt", "LicenseRef-PdfiumThirdParty.txt", "dep5-wheel"]},
    },
    "onnxruntime-1.22.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl": {
        "onnxruntime/capi/libonnxruntime.so.1.22.1": "libonnxruntime.so",
        "onnxruntime/LICENSE": "onnxruntime-LICENSE",
        "onnxruntime/ThirdPartyNotices.txt": "onnxruntime-ThirdPartyNotices.txt",
    },
    "rapidocr-3.10.0-py3-none-any.whl": {
        "rapidocr/models/PP-OCRv6_det_small.onnx": "PP-OCRv6_det_small.onnx",
        "rapidocr/models/PP-OCRv6_rec_small.onnx": "PP-OCRv6_rec_small.onnx",
        "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
        "rapidocr-3.10.0.dist-info/licenses/LICENSE": "rapidocr-LICENSE",
        "rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md": "PP-OCR-MODEL_LICENSES.md",
    },
}
for wheel, files in wanted.items():
    with zipfile.ZipFile(f"{tmp}/{wheel}") as z:
        for name, target in files.items():
            with z.open(name) as src, open(f"{out}/{target}", "wb") as dst:
                dst.write(src.read())
PY
echo "$stamp" > "$dir/.installed"
echo "PDF libraries installed in $dir: $(ls "$dir" | tr '\n' ' ')"
