"""Writes the test PDFs (tests/pdf.rs builds its inputs; none is committed).

Usage: make_pdfs.py OUT_DIR
       make_pdfs.py --scan OUT.pdf PAGE.pgm...   (a scanned PDF: one image per page)

- discharge.pdf: a three-page discharge record in the font setup of iText-based HIS exports
  (reportlab's non-embedded STSong-Light, UniGB-UCS2-H): identifiers, sections with the usual
  heading styles (colon, 【】, numbered, a heading alone on its line), a blank second page, and
  the operative report running onto the third page.
- embedded.pdf: the first page of discharge.pdf in an embedded, subset TrueType font (the
  setup of exports that embed their fonts; Debian's WenQuanYi Micro Hei).
- chromium.pdf: the first page of discharge.pdf printed to PDF by headless Chromium (Debian's,
  which tests/setup.sh installs): an embedded CID TrueType font, Identity-H, as browser-based
  HIS exports write it.
- two-column.pdf: a page in two columns between a full-width title and footer (the left
  column drawn first, as layout programs write them), each column with its own sections.
- scan.pdf: a page with no text layer (only drawn shapes), as a scanned page reads.
"""
import os
import sys

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

if sys.argv[1] == "--scan":
    from reportlab.lib.utils import ImageReader
    from PIL import Image
    c = canvas.Canvas(sys.argv[2])
    for path in sys.argv[3:]:
        img = Image.open(path)
        w, h = img.size
        c.setPageSize((w * 72 / 200, h * 72 / 200))
        c.drawImage(ImageReader(img), 0, 0, width=w * 72 / 200, height=h * 72 / 200)
        c.showPage()
    c.save()
    sys.exit(0)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))


def page(c, lines, font="STSong-Light"):
    c.setFont(font, 11)
    y = 800
    for line in lines:
        c.drawString(40, y, line)
        y -= 18
    c.showPage()


FIRST_PAGE = [
    "XX市第一人民医院  出院记录",
    "姓名：王建国  性别：男  年龄：67岁  住院号：ZY20261188",
    "身份证号：330102195903071234  联系电话：13812345678",
    "现住址：浙江省杭州市上城区解放路88号",
    "入院日期：2026-11-20  出院日期：2026-11-28",
    "主诉：反复胸闷胸痛3年，加重1周。",
    "【现病史】患者3年前活动后出现胸闷，休息可缓解，1周前发作频繁。",
    "既往史：高血压病10年，最高180/100mmHg。",
    "一、入院诊断",
    "1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛 2.高血压病3级（极高危）",
]
c = canvas.Canvas(os.path.join(out, "discharge.pdf"))
page(c, FIRST_PAGE)
page(c, [])
page(c, [
    "手术名称：经皮冠状动脉支架植入术",
    "手术经过：右桡动脉入路，TIG造影示前降支近段狭窄90%，",
    "送入指引导管及导丝，于前降支近段植入药物洗脱支架1枚，术后TIMI 3级。",
    "出院诊断：1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛 2.高血压病3级（极高危）",
    "出院医嘱：阿司匹林、替格瑞洛双联抗血小板12个月。",
])
c.save()

from reportlab.pdfbase.ttfonts import TTFont
pdfmetrics.registerFont(TTFont("WQY", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", subfontIndex=0))
c = canvas.Canvas(os.path.join(out, "embedded.pdf"))
page(c, FIRST_PAGE, font="WQY")
c.save()

import html
import subprocess
import tempfile
with tempfile.TemporaryDirectory() as tmp:
    page_html = os.path.join(tmp, "record.html")
    with open(page_html, "w", encoding="utf-8") as f:
        f.write('<!doctype html><meta charset="utf-8"><style>body{font-family:"WenQuanYi Micro Hei";'
                'font-size:11pt;line-height:18pt;margin:40pt} p{margin:0}</style>')
        f.write("".join(f"<p>{html.escape(line)}</p>" for line in FIRST_PAGE))
    subprocess.run(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer",
         f"--print-to-pdf={os.path.join(out, 'chromium.pdf')}", f"file://{page_html}"],
        check=True, capture_output=True, timeout=120)

TWO_COLUMNS = (
    [
        "现病史：患者1周前活动后出现胸骨后压榨样疼",
        "痛，持续约10分钟，休息后可缓解，伴出汗，无",
        "放射痛，今为进一步诊治收入我科。",
        "入院诊断：1.冠状动脉粥样硬化性心脏病不稳定",
        "型心绞痛 2.高血压病2级（高危）",
    ],
    [
        "诊疗经过：入院后完善相关检查，行冠状动脉造",
        "影示右冠状动脉中段狭窄约80%，于病变处植入",
        "药物洗脱支架1枚，术后予双联抗血小板治疗。",
        "出院诊断：1.冠状动脉粥样硬化性心脏病不稳定",
        "型心绞痛 2.高血压病2级（高危）",
    ],
)
c = canvas.Canvas(os.path.join(out, "two-column.pdf"))
c.setFont("STSong-Light", 12)
c.drawString(40, 800, "XX市第一人民医院心血管内科出院记录（第1页，共1页）打印日期：2026-11-28")
c.setFont("STSong-Light", 11)
for x, column in zip((40, 310), TWO_COLUMNS):
    y = 770
    for line in column:
        c.drawString(x, y, line)
        y -= 18
c.drawString(40, 670, "出院医嘱：阿司匹林100mg每日一次，阿托伐他汀20mg每晚一次，1个月后门诊随访。")
c.showPage()
c.save()

c = canvas.Canvas(os.path.join(out, "scan.pdf"))
c.rect(40, 400, 500, 300, fill=1)
c.showPage()
c.save()
print("test PDFs written to", out)
