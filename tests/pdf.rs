//! PDF discharge records (issue 15), with the real PDFium that `scripts/fetch-pdf.sh` installs
//! into `target/pdf` (tests/setup.sh) and PDFs the test writes with reportlab in the font setup
//! of iText-based HIS exports: read, de-identified, split into sections with their pages,
//! coded by `jointcoder code`, by `DocumentReference/$code` and by the workbench's upload; an
//! embedded TrueType font, Chromium's print to PDF and a two-column page read in order, from
//! the text layer and by OCR; a scan (no text layer) and a server without PDFium are answered
//! with what is missing.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use jointcoder::record::Section;
use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pdfium_dir() -> PathBuf {
    let dir = root().join("target/pdf");
    assert!(dir.join("libpdfium.so").is_file(), "PDFium is missing: run scripts/fetch-pdf.sh target/pdf (tests/setup.sh does)");
    dir
}

/// The test PDFs, written once per run.
fn pdfs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let python = root().join("target/fhir-validator/bin/python");
        assert!(python.is_file(), "run tests/setup_validator.sh (the README's test command does)");
        let out = std::process::Command::new(python).arg(root().join("tests/pdf/make_pdfs.py")).arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        dir
    })
    .path()
}

fn pdf(name: &str) -> Vec<u8> {
    std::fs::read(pdfs().join(name)).unwrap()
}

const SECRETS: &[&str] = &["王建国", "ZY20261188", "330102195903071234", "13812345678", "解放路88号"];

#[test]
fn a_pdf_becomes_a_de_identified_record_with_its_pages() {
    let reader = jointcoder::ingest::pdf::PdfReader::open(&pdfium_dir()).unwrap();
    let x = jointcoder::ingest::extract(reader, None, &pdf("discharge.pdf"), "pdf-1", jointcoder::ingest::deid::Dates::Keep).unwrap();
    assert_eq!(x.pages, 3);
    assert_eq!(x.pages_without_text, [2]);
    let s = &x.record.sections;
    assert_eq!(s[&Section::ChiefComplaint], "反复胸闷胸痛3年，加重1周。");
    assert!(s[&Section::PresentIllness].starts_with("患者3年前活动后出现胸闷"), "{:?}", s[&Section::PresentIllness]);
    assert!(s[&Section::AdmissionDiagnosis].starts_with("1.冠状动脉粥样硬化性心脏病"));
    assert!(s[&Section::OperativeReport].contains("植入药物洗脱支架1枚"), "the report runs onto its next line");
    assert_eq!(s[&Section::ProcedureName], "经皮冠状动脉支架植入术");
    let dx = x.spans.iter().find(|sp| sp.section == Section::DischargeDiagnosis).unwrap();
    assert_eq!(dx.page, 3, "evidence points into the page it is on");
    let all = format!("{:?}", x.record);
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} was not masked: {all}");
    }
    for kind in ["name", "record-number", "id-card", "phone", "address"] {
        assert_eq!(x.masked.count(kind), 1, "{kind}");
    }

    let scan = jointcoder::ingest::extract(reader, None, &pdf("scan.pdf"), "scan", jointcoder::ingest::deid::Dates::Keep);
    assert!(matches!(scan, Err(jointcoder::ingest::IngestError::NeedsOcr { ref pages }) if pages == &[1]), "{scan:?}");
    let junk = jointcoder::ingest::extract(reader, None, b"%PDF-1.4 not really", "junk", jointcoder::ingest::deid::Dates::Keep);
    assert!(matches!(junk, Err(jointcoder::ingest::IngestError::Unreadable(_))), "{junk:?}");
}

/// The discharge record as a scan: its pages rendered at 200 dpi by PDFium (with the CJK font
/// tests/setup.sh installs) and put back into a PDF as images only.
fn scanned_discharge() -> Vec<u8> {
    static SCAN: OnceLock<Vec<u8>> = OnceLock::new();
    SCAN.get_or_init(|| {
        let reader = jointcoder::ingest::pdf::PdfReader::open(&pdfium_dir()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        for page in [0, 2] {
            let g = reader.render_gray(&pdf("discharge.pdf"), page, 200.0).unwrap();
            let path = dir.path().join(format!("p{page}.pgm"));
            let mut pgm = format!("P5\n{} {}\n255\n", g.width, g.height).into_bytes();
            pgm.extend_from_slice(&g.pixels);
            std::fs::write(&path, pgm).unwrap();
            images.push(path);
        }
        let out = dir.path().join("scanned.pdf");
        let status = std::process::Command::new(root().join("target/fhir-validator/bin/python"))
            .arg(root().join("tests/pdf/make_pdfs.py"))
            .arg("--scan")
            .arg(&out)
            .args(&images)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    })
    .clone()
}

fn upright_page(reader: &jointcoder::ingest::pdf::PdfReader) -> jointcoder::ingest::ocr::Gray {
    reader.render_gray(&pdf("discharge.pdf"), 0, 200.0).unwrap()
}

/// The page as a sheet fed askew: turned by `degrees` about its centre (bilinear, white
/// corners), written here rather than with the code under test.
fn tilted(page: &jointcoder::ingest::ocr::Gray, degrees: f32) -> jointcoder::ingest::ocr::Gray {
    let (sin, cos) = (-degrees).to_radians().sin_cos();
    let (w, h) = (page.width as f32, page.height as f32);
    let mut out = page.clone();
    for y in 0..page.height {
        for x in 0..page.width {
            let (dx, dy) = (x as f32 - w / 2.0, y as f32 - h / 2.0);
            let (sx, sy) = (w / 2.0 + dx * cos - dy * sin, h / 2.0 + dx * sin + dy * cos);
            let (ix, iy) = (sx.floor() as i64, sy.floor() as i64);
            let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
            let px = |x: i64, y: i64| if x < 0 || y < 0 || x >= page.width as i64 || y >= page.height as i64 { 255.0 } else { page.pixels[y as usize * page.width + x as usize] as f32 };
            let v = (px(ix, iy) * (1.0 - fx) + px(ix + 1, iy) * fx) * (1.0 - fy) + (px(ix, iy + 1) * (1.0 - fx) + px(ix + 1, iy + 1) * fx) * fy;
            out.pixels[y * page.width + x] = v.round() as u8;
        }
    }
    out
}

/// Edit distance over characters, whitespace ignored.
fn char_errors(got: &str, want: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (got.chars().filter(|c| !c.is_whitespace()).collect(), want.chars().filter(|c| !c.is_whitespace()).collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[test]
fn scanned_pages_are_read_by_ocr() {
    let dir = pdfium_dir();
    let reader = jointcoder::ingest::pdf::PdfReader::open(&dir).unwrap();
    let ocr = jointcoder::ingest::ocr::Ocr::open(&dir).unwrap();
    // One clean page: the OCR against the text layer of the same page.
    let layer = &reader.page_texts(&pdf("discharge.pdf")).unwrap()[0];
    let read = ocr.read(&upright_page(reader)).unwrap();
    let errors = char_errors(&read, layer);
    let total = layer.chars().filter(|c| !c.is_whitespace()).count();
    assert!(errors * 100 <= total, "{errors} character errors in {total}:\n{read}");
    assert_eq!(read.lines().count(), layer.lines().count(), "one line per printed line, in order:\n{read}");
    // A poor scan: blurred (3×3 box), grey paper, speckle noise.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut poor = upright_page(&reader);
    let (w, h) = (poor.width, poor.height);
    let src = poor.pixels.clone();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let mut sum = 0u32;
            for dy in 0..3 {
                for dx in 0..3 {
                    sum += src[(y + dy - 1) * w + (x + dx - 1)] as u32;
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let noise = (rng % 41) as i32 - 20;
            poor.pixels[y * w + x] = ((sum / 9) as i32 * 85 / 100 + 20 + noise).clamp(0, 255) as u8;
        }
    }
    let read_poor = ocr.read(&poor).unwrap();
    let poor_errors = char_errors(&read_poor, layer);
    println!("OCR character errors: clean {errors} of {total}, blurred and noisy {poor_errors} of {total}");
    assert!(poor_errors * 100 <= 3 * total, "{poor_errors} character errors in {total} on a poor scan:\n{read_poor}");
    // Fed askew (both ways): straightened before its lines are found.
    for tilt in [2.5f32, -1.5] {
        let read = ocr.read(&tilted(&upright_page(reader), tilt)).unwrap();
        let errors = char_errors(&read, layer);
        assert!(errors * 100 <= total, "tilted {tilt}°: {errors} character errors in {total}:\n{read}");
        assert_eq!(read.lines().count(), layer.lines().count(), "tilted {tilt}°: lines kept apart:\n{read}");
    }
    // Scanned on its side or upside down: turned back before it is read.
    let upright = upright_page(reader);
    let quarter = upright.rotated_90();
    for (turn, image) in [("90°", quarter.clone()), ("180°", upright.rotated_180()), ("270°", quarter.rotated_180())] {
        let read = ocr.read(&image).unwrap();
        let errors = char_errors(&read, layer);
        assert!(errors * 100 <= total, "turned {turn}: {errors} character errors in {total}:\n{read}");
    }

    // The scan as a record: sections from the OCR text, identifiers masked, pages marked.
    let x = jointcoder::ingest::extract(reader, Some(ocr), &scanned_discharge(), "scan-1", jointcoder::ingest::deid::Dates::Keep).unwrap();
    assert_eq!(x.pages_ocr, [1, 2]);
    assert!(x.record.sections[&Section::ChiefComplaint].contains("反复胸闷胸痛3年"), "{:?}", x.record.sections);
    assert!(x.record.sections[&Section::OperativeReport].contains("药物洗脱支架1枚"), "{:?}", x.record.sections);
    let all = format!("{:?}", x.record);
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} was not masked in the OCR text: {all}");
    }
    let blank = jointcoder::ingest::extract(reader, Some(ocr), &pdf("scan.pdf"), "blank", jointcoder::ingest::deid::Dates::Keep);
    // A page that is only a black box reads as no record (OCR may see marks in it, not headings).
    assert!(matches!(blank, Err(jointcoder::ingest::IngestError::NoText { .. } | jointcoder::ingest::IngestError::NoSections)), "{blank:?}");
}

/// The sections of two-column.pdf, however it was read: each column's text in its own
/// sections, none of the other column's lines inside them.
fn assert_two_columns(s: &std::collections::BTreeMap<Section, String>, read: &str) {
    let section = |k: Section| s.get(&k).map(String::as_str).unwrap_or_else(|| panic!("no {k:?} in:\n{read}"));
    let illness = section(Section::PresentIllness);
    assert!(illness.contains("胸骨后压榨样") && illness.contains("收入我科"), "{illness:?} from:\n{read}");
    assert!(!illness.contains("冠状动脉造"), "the right column's lines are not in the left's section: {illness:?}");
    let admission = section(Section::AdmissionDiagnosis);
    assert!(admission.contains("不稳定") && admission.contains("高血压病2级"), "{admission:?} from:\n{read}");
    assert!(!admission.contains("支架"), "{admission:?}");
    let course = section(Section::ClinicalCourse);
    assert!(course.contains("右冠状动脉中段") && course.contains("抗血小板治疗"), "{course:?} from:\n{read}");
    let discharge = section(Section::DischargeDiagnosis);
    assert!(discharge.contains("高血压病2级") && !discharge.contains("阿司匹林"), "{discharge:?} from:\n{read}");
    assert!(section(Section::DischargeOrders).contains("门诊随访"), "the full-width footer after both columns");
}

#[test]
fn embedded_fonts_and_two_column_pages_read_in_order_from_the_text_layer_and_by_ocr() {
    let dir = pdfium_dir();
    let reader = jointcoder::ingest::pdf::PdfReader::open(&dir).unwrap();
    let cid = &reader.page_texts(&pdf("discharge.pdf")).unwrap()[0];
    let ttf = &reader.page_texts(&pdf("embedded.pdf")).unwrap()[0];
    assert_eq!(char_errors(ttf, cid), 0, "an embedded subset TrueType font reads as the CID font does:\n{ttf}");
    let printed = &reader.page_texts(&pdf("chromium.pdf")).unwrap()[0];
    assert_eq!(char_errors(printed, cid), 0, "Chromium's print (embedded CID TrueType, Identity-H) reads as the CID font does:\n{printed}");

    let layer = jointcoder::ingest::extract(reader, None, &pdf("two-column.pdf"), "two-columns", jointcoder::ingest::deid::Dates::Keep).unwrap();
    assert_two_columns(&layer.record.sections, &format!("{:?}", layer.record.sections));

    // Scanned, the columns are side by side in the image: reading by row would interleave
    // their lines.
    let ocr = jointcoder::ingest::ocr::Ocr::open(&dir).unwrap();
    let read = ocr.read(&reader.render_gray(&pdf("two-column.pdf"), 0, 200.0).unwrap()).unwrap();
    let scanned = jointcoder::ingest::extract_pages(&[read.clone()], "two-columns-scan", jointcoder::ingest::deid::Dates::Keep).unwrap();
    assert_two_columns(&scanned.record.sections, &read);
}

#[test]
fn jointcoder_code_reads_a_pdf_and_a_folder_of_them() {
    let data = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("a-discharge.pdf"), pdf("discharge.pdf")).unwrap();
    std::fs::write(folder.path().join("b-scan.pdf"), pdf("scan.pdf")).unwrap();
    std::fs::write(folder.path().join("c-broken.pdf"), b"not a pdf").unwrap();
    let run = |target: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_jointcoder"))
            .arg("--data-dir")
            .arg(data.path())
            .arg("code")
            .arg(target)
            .env("JOINTCODER_TERMINOLOGY_DIR", common::terminology_dir())
            .env("JOINTCODER_PDF_DIR", pdfium_dir())
            .env("JOINTCODER_AUTO_TRAIN", "false")
            .output()
            .unwrap()
    };
    let one = run(&folder.path().join("a-discharge.pdf"));
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    let line: Value = serde_json::from_str(String::from_utf8_lossy(&one.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["record_id"], "a-discharge");
    assert_eq!(line["diseases"][0], "I20.000", "{line}");
    assert!(line["procedures"].as_array().unwrap().iter().any(|p| p == "36.0700"), "{line}");

    let all = run(folder.path());
    let stderr = String::from_utf8_lossy(&all.stderr);
    assert!(all.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&all.stdout).lines().count(), 1, "the one readable PDF is coded");
    assert!(stderr.contains("b-scan.pdf") && stderr.contains("OCR"), "a page with nothing on it, said so: {stderr}");
    assert!(stderr.contains("c-broken.pdf") && stderr.contains("cannot be read"), "{stderr}");
    assert!(stderr.contains("coded 1 of 3"), "{stderr}");
}

/// The workbench's upload of a PDF: its de-identified sections to edit before coding, with
/// what was masked, and no identifier anywhere in the page.
#[test]
fn the_workbench_opens_an_uploaded_pdf_de_identified_for_editing() {
    let mut config = common::test_config(std::env::temp_dir());
    config.pdf_dir = Some(pdfium_dir());
    let server = common::start_server(config, common::terminology().clone());
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf("discharge.pdf"));
    let body = format!("file_name=discharge.pdf&file_b64={}", common::enc(&b64));
    let origin = format!("http://{}", server.addr);
    let headers = [("HX-Request", "true"), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str())];
    let r = common::request(&server.addr, "POST", "/ui/upload", &headers, body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(r#"name="s.chief_complaint""#) && r.body.contains("反复胸闷胸痛3年"), "{}", r.body);
    assert!(r.body.contains(r#"name="s.operative_report""#) && r.body.contains("植入药物洗脱支架1枚"), "the report from page 3");
    assert!(r.body.contains("PDF 页数 3") && r.body.contains("name 1"), "what was masked, by kind: {}", r.body);
    for secret in SECRETS {
        assert!(!r.body.contains(secret), "{secret} reached the page");
    }
    let broken = format!("file_name=x.pdf&file_b64={}", common::enc(&base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 not really")));
    let r = common::request(&server.addr, "POST", "/ui/upload", &headers, broken.as_bytes());
    assert_eq!(r.status, 400, "an unreadable PDF is the client's error: {}", r.body);
}

#[test]
fn document_reference_code_reads_pdfs_inline_and_from_a_binary() {
    let mut config = common::test_config(std::env::temp_dir());
    config.pdf_dir = Some(pdfium_dir());
    let server = common::start_server(config, common::terminology().clone());
    let addr = &server.addr;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let doc = |attachment: Value| json!({ "resourceType": "DocumentReference", "id": "dr-pdf-1", "status": "current", "subject": { "reference": "Patient/p-pdf" }, "content": [{ "attachment": attachment }] });

    let r = common::post_json(addr, "/fhir/DocumentReference/$code", &doc(json!({ "contentType": "application/pdf", "data": b64(&pdf("discharge.pdf")) })).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let bundle = r.json();
    let codes = |ty: &str| -> Vec<String> {
        bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|x| x["resourceType"] == ty).map(|x| x["code"]["coding"][0]["code"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(codes("Condition")[0], "I20.000");
    assert!(codes("Procedure").contains(&"36.0700".to_owned()));
    // Evidence names the page it is on, and its offsets are into that page's text.
    let reader = jointcoder::ingest::pdf::PdfReader::open(&pdfium_dir()).unwrap();
    let layers = reader.page_texts(&pdf("discharge.pdf")).unwrap();
    let principal = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).find(|x| x["resourceType"] == "Condition").unwrap();
    let evidence: Vec<&Value> = principal["extension"].as_array().unwrap().iter().filter(|e| e["url"].as_str().unwrap().ends_with("/evidence")).collect();
    assert!(!evidence.is_empty());
    for ev in evidence {
        let part = |name: &str| ev["extension"].as_array().unwrap().iter().find(|p| p["url"] == name).cloned();
        let (page, start, end) = (part("page").expect("a page").clone(), part("pageStart").unwrap(), part("pageEnd").unwrap());
        let page_text: Vec<char> = layers[page["valueInteger"].as_u64().unwrap() as usize - 1].chars().collect();
        let (start, end) = (start["valueInteger"].as_u64().unwrap() as usize, end["valueInteger"].as_u64().unwrap() as usize);
        assert_eq!(page_text[start..end].iter().collect::<String>(), part("text").unwrap()["valueString"].as_str().unwrap(), "{ev}");
    }
    // Nothing identifying reached what was answered and stored.
    for secret in SECRETS {
        assert!(!r.body.contains(secret), "{secret} in the answer");
    }
    let stored = common::get(addr, "/fhir/Condition?subject=Patient/p-pdf&_count=50");
    for secret in SECRETS {
        assert!(!stored.body.contains(secret), "{secret} stored");
    }

    // A PDF posted raw as a Binary, coded by reference.
    let posted = common::request(addr, "POST", "/fhir/Binary", &[("Content-Type", "application/pdf")], &pdf("discharge.pdf"));
    assert_eq!(posted.status, 201, "{}", posted.body);
    let id = posted.json()["id"].as_str().unwrap().to_owned();
    let r = common::post_json(addr, "/fhir/DocumentReference/$code?persist=false", &doc(json!({ "contentType": "application/pdf", "url": format!("Binary/{id}") })).to_string());
    assert_eq!(r.status, 200, "{}", r.body);

    // A scanned record is read by OCR and coded; a page with nothing written on it is a 422.
    let r = common::post_json(addr, "/fhir/DocumentReference/$code?persist=false", &doc(json!({ "contentType": "application/pdf", "data": b64(&scanned_discharge()) })).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("I20.000") && r.body.contains("36.0700"), "{}", r.body);
    for secret in SECRETS {
        assert!(!r.body.contains(secret), "{secret} in the answer to a scan");
    }
    let r = common::post_json(addr, "/fhir/DocumentReference/$code?persist=false", &doc(json!({ "contentType": "application/pdf", "data": b64(&pdf("scan.pdf")) })).to_string());
    assert_eq!(r.status, 422, "{}", r.body);
    // Not a PDF at all: 400.
    let r = common::post_json(addr, "/fhir/DocumentReference/$code?persist=false", &doc(json!({ "contentType": "application/pdf", "data": b64(b"%PDF-1.7 garbage") })).to_string());
    assert_eq!(r.status, 400, "{}", r.body);
    // $extract: the sections before coding, with pages and offsets, what was masked, and a
    // Composition to edit and code.
    let r = common::post_json(addr, "/fhir/DocumentReference/$extract", &doc(json!({ "contentType": "application/pdf", "data": b64(&pdf("discharge.pdf")) })).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let x = r.json();
    common::assert_valid_r4_external(std::slice::from_ref(&x));
    for secret in SECRETS {
        assert!(!r.body.contains(secret), "{secret} shown by $extract");
    }
    let params = x["parameter"].as_array().unwrap();
    let one = |name: &str| params.iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(one("pages")["valueInteger"], 3);
    assert_eq!(one("pageWithoutText")["valueInteger"], 2);
    let part = |p: &Value, name: &str| p["part"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap().clone();
    let dx = params.iter().find(|p| p["name"] == "section" && part(p, "key")["valueCode"] == "discharge_diagnosis").unwrap();
    assert_eq!(part(dx, "page")["valueInteger"], 3);
    assert!(part(dx, "text")["valueString"].as_str().unwrap().starts_with("1.冠状动脉粥样硬化性心脏病"));
    assert!(params.iter().any(|p| p["name"] == "masked" && part(p, "kind")["valueCode"] == "phone"));
    let mut comp = one("composition")["resource"].clone();
    // The same record sent as text (its sections as a Composition) is coded as the PDF was.
    let as_text = common::post_json(addr, "/fhir/Composition/$code?persist=false", &comp.to_string());
    assert_eq!(as_text.status, 200, "{}", as_text.body);
    let text_bundle = as_text.json();
    let text_codes = |ty: &str| -> Vec<String> {
        text_bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|x| x["resourceType"] == ty).map(|x| x["code"]["coding"][0]["code"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(text_codes("Condition"), codes("Condition"), "the diagnoses, in order, are the PDF's");
    assert_eq!(text_codes("Procedure"), codes("Procedure"), "the procedures, in order, are the PDF's");
    // The coder corrects a section, then codes the Composition.
    let sections = comp["section"].as_array_mut().unwrap();
    let dx_section = sections.iter_mut().find(|s| s["title"] == "出院诊断").unwrap();
    dx_section["text"]["div"] = json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">1.冠状动脉粥样硬化性心脏病 急性非ST段抬高型心肌梗死</div>");
    let r = common::post_json(addr, "/fhir/Composition/$code?persist=false", &comp.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("I21.401"), "the coder's correction is what is coded");

    // The CapabilityStatement says PDFs are read here.
    let cap = common::get(addr, "/fhir/metadata").json();
    assert!(cap["rest"][0]["operation"][0]["documentation"].as_str().unwrap().contains("PDF attachments are read"), "{}", cap["rest"][0]["operation"][0]);
}

#[test]
fn a_server_set_not_to_keep_original_pdfs_refuses_them_and_still_codes_them_inline() {
    let mut config = common::test_config(std::env::temp_dir());
    config.pdf_dir = Some(pdfium_dir());
    config.pdf_store_originals = false;
    config.pdf_date_shift_days = Some(-9);
    let server = common::start_server(config, common::terminology().clone());
    let r = common::request(&server.addr, "POST", "/fhir/Binary", &[("Content-Type", "application/pdf")], &pdf("discharge.pdf"));
    assert_eq!((r.status, r.json()["issue"][0]["details"]["coding"][0]["code"].as_str()), (422, Some("originals_not_kept")), "{}", r.body);
    let wrapped = json!({ "resourceType": "Binary", "contentType": "application/pdf", "data": base64::engine::general_purpose::STANDARD.encode(pdf("discharge.pdf")) });
    assert_eq!(common::post_json(&server.addr, "/fhir/Binary", &wrapped.to_string()).status, 422, "as a Binary resource neither");
    assert_eq!(common::get(&server.addr, "/fhir/Binary?_summary=count").json()["total"], 0, "nothing stored");
    let text = common::request(&server.addr, "POST", "/fhir/Binary", &[("Content-Type", "text/plain")], "出院诊断：高血压".as_bytes());
    assert_eq!(text.status, 201, "other content is kept as before");
    let doc = json!({ "resourceType": "DocumentReference", "status": "current",
        "content": [{ "attachment": { "contentType": "application/pdf", "data": base64::engine::general_purpose::STANDARD.encode(pdf("discharge.pdf")) } }] });
    assert_eq!(common::post_json(&server.addr, "/fhir/DocumentReference/$code?persist=false", &doc.to_string()).status, 200);
    // This deployment shifts dates: what $extract shows has the course's intervals, not its days.
    let x = common::post_json(&server.addr, "/fhir/DocumentReference/$extract", &doc.to_string());
    assert_eq!(x.status, 200, "{}", x.body);
    assert!(!x.body.contains("2026-11-20") && !x.body.contains("2026-11-28"), "{}", x.body);
    assert!(x.body.contains("date-shifted"), "{}", x.body);
}
