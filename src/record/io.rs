//! Readers for the layouts hospitals send: JSON object or array, JSONL, XLSX (the JointCoder
//! batch-upload sheet) and CSV. One bad row is reported with its row number and field; the
//! other rows are still read.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{EhrRecord, Gold, Section};

/// A row that could not be read, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("row {row}: field {field}: {message}")]
pub struct RowError {
    /// 1-based: the array position, the JSONL line, or the sheet row (header = 1).
    pub row: usize,
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}: unknown layout (expected .json, .jsonl, .ndjson, .xlsx or .csv)")]
    UnknownFormat { path: String },
}

#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub records: Vec<EhrRecord>,
    /// The row (line, sheet row, array item; from 1) each of `records` came from, so that a
    /// report can list records and bad rows in the file's order; empty where records were
    /// gathered from several files.
    pub record_rows: Vec<usize>,
    /// Rows that could not be read at all (not JSON, not an object).
    pub errors: Vec<RowError>,
    /// Fields skipped in rows that were read: a known field with a value of the wrong kind
    /// (an object where text belongs, a gold code that is not a code).
    pub warnings: Vec<RowError>,
    /// Whole files of a batch that could not be read (each reported as it was met).
    pub unreadable: usize,
}

const ID_KEYS: &[&str] = &["record_id", "病案标识", "ID", "id", "病案号", "住院号"];
const DX_PRINCIPAL: &[&str] = &["出院主要诊断编码", "主要诊断编码"];
const DX_PRINCIPAL_NAME: &[&str] = &["出院主要诊断名称", "主要诊断名称"];
const DX_OTHER: &[&str] = &["出院其他诊断编码", "其他诊断编码"];
const DX_OTHER_NAME: &[&str] = &["出院其他诊断名称", "其他诊断名称"];
const PX_PRINCIPAL: &str = "主要手术操作编码";
const PX_PRINCIPAL_NAME: &str = "主要手术操作名称";
const PX_OTHER: &str = "其他手术操作编码";
const PX_OTHER_NAME: &str = "其他手术操作名称";

pub fn read_path(path: &Path) -> Result<ReadOutcome, ReadError> {
    let file_err = |m: String| ReadError::File { path: path.display().to_string(), message: m };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "json" | "jsonl" | "ndjson" => {
            let bytes = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
            let text = String::from_utf8(bytes).map_err(|_| file_err("not UTF-8 text".into()))?;
            if ext == "json" {
                read_json_text(&text).map_err(file_err)
            } else {
                Ok(read_jsonl_text(&text))
            }
        }
        "xlsx" | "xls" | "xlsm" => read_xlsx(path).map_err(file_err),
        "csv" => {
            let file = std::fs::File::open(path).map_err(|e| file_err(e.to_string()))?;
            read_csv(file).map_err(file_err)
        }
        _ => Err(ReadError::UnknownFormat { path: path.display().to_string() }),
    }
}

/// A JSON document: one record object, or an array of them. A JSON text that is not one
/// document but one object per line is read as JSONL.
pub fn read_json_text(text: &str) -> Result<ReadOutcome, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => {
            let mut out = ReadOutcome::default();
            for (i, item) in items.iter().enumerate() {
                let rec = record_from_json_noting(item, i + 1, &mut out.warnings);
                push(&mut out, rec, i + 1);
            }
            Ok(out)
        }
        Ok(v @ Value::Object(_)) => {
            let mut out = ReadOutcome::default();
            let rec = record_from_json_noting(&v, 1, &mut out.warnings);
            push(&mut out, rec, 1);
            Ok(out)
        }
        Ok(_) => Err("expected a record object or an array of records".into()),
        Err(e) if text.trim_start().starts_with('{') && text.trim().lines().count() > 1 => {
            let out = read_jsonl_text(text);
            if out.records.is_empty() {
                Err(format!("invalid JSON: {e}"))
            } else {
                Ok(out)
            }
        }
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

pub fn read_jsonl_text(text: &str) -> ReadOutcome {
    let mut out = ReadOutcome::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str::<Value>(line)
            .map_err(|e| RowError { row: i + 1, field: "(line)".into(), message: format!("invalid JSON: {e}") })
            .and_then(|v| record_from_json_noting(&v, i + 1, &mut out.warnings));
        push(&mut out, rec, i + 1);
    }
    out
}

fn push(out: &mut ReadOutcome, rec: Result<EhrRecord, RowError>, row: usize) {
    match rec {
        Ok(r) => {
            out.records.push(r);
            out.record_rows.push(row);
        }
        Err(e) => out.errors.push(e),
    }
}

/// One flat record object (English or Chinese keys) → [`EhrRecord`]; fields skipped are
/// dropped silently (see [`record_from_json_noting`]).
pub fn record_from_json(value: &Value, row: usize) -> Result<EhrRecord, RowError> {
    record_from_json_noting(value, row, &mut Vec::new())
}

/// Whether a key is one the layouts define (an id, a section, a code column).
fn is_known_key(key: &str) -> bool {
    let key = key.trim();
    ID_KEYS.contains(&key)
        || Section::from_key(key).is_some()
        || [DX_PRINCIPAL, DX_PRINCIPAL_NAME, &[PX_PRINCIPAL, PX_PRINCIPAL_NAME]].iter().any(|ks| ks.contains(&key))
        || numbered(key, DX_OTHER, DX_OTHER_NAME).is_some()
        || numbered(key, &[PX_OTHER], &[PX_OTHER_NAME]).is_some()
}

/// As [`record_from_json`], noting each skipped field in `warnings`. A key the layouts do not
/// define is kept when its value is text (or a number), and ignored whatever else it holds
/// (a `rationale` or `meta` object); a known field whose value is not text is skipped with a
/// warning, and the rest of the record is read.
pub fn record_from_json_noting(value: &Value, row: usize, warnings: &mut Vec<RowError>) -> Result<EhrRecord, RowError> {
    let Value::Object(map) = value else {
        return Err(RowError { row, field: "(record)".into(), message: "expected a JSON object".into() });
    };
    let mut cells: Vec<(String, String)> = Vec::with_capacity(map.len());
    let mut gold_obj: Option<&Value> = None;
    for (k, v) in map {
        if k == "gold" {
            gold_obj = Some(v);
            continue;
        }
        let mut cell = |key: &String, value: &Value| match cell_text(value, row, key) {
            Ok(text) => cells.push((key.clone(), text)),
            Err(e) if is_known_key(key) => warnings.push(e),
            Err(_) => {}
        };
        match (k.as_str(), v) {
            // Our own serialized form: {"sections": {"chief_complaint": …}, "extra": {…}}.
            ("sections" | "extra", Value::Object(inner)) => inner.iter().for_each(|(ik, iv)| cell(ik, iv)),
            _ => cell(k, v),
        }
    }
    let mut rec = record_from_cells_noting(&cells, row, warnings);
    if let Some(g) = gold_obj {
        let gold = serde_json::from_value::<Gold>(g.clone())
            .map_err(|e| RowError { row, field: "gold".into(), message: e.to_string() })
            .and_then(|gold| gold.diseases.iter().chain(&gold.procedures).try_for_each(|c| check_code(c, row, "gold")).map(|_| gold));
        match gold {
            Ok(gold) => rec.gold = Some(gold),
            Err(e) => warnings.push(e),
        }
    }
    Ok(rec)
}

fn cell_text(v: &Value, row: usize, field: &str) -> Result<String, RowError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    Value::String(s) => parts.push(s.clone()),
                    Value::Number(n) => parts.push(n.to_string()),
                    _ => {
                        return Err(RowError {
                            row,
                            field: field.to_owned(),
                            message: "a list may hold only text".into(),
                        })
                    }
                }
            }
            Ok(parts.join("\n"))
        }
        Value::Object(_) => Err(RowError { row, field: field.to_owned(), message: "expected text, found an object".into() }),
    }
}

/// The shared core of every layout: (header, cell text) pairs of one row → a record. A gold
/// code that is not a code is an error naming its field (see [`record_from_cells_noting`]
/// for the reader that keeps the record).
pub fn record_from_cells(cells: &[(String, String)], row: usize) -> Result<EhrRecord, RowError> {
    let mut warnings = Vec::new();
    let rec = record_from_cells_noting(cells, row, &mut warnings);
    match warnings.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(rec),
    }
}

/// As [`record_from_cells`], keeping the record when a gold code is not a code: its gold is
/// dropped (a gold set missing a code would mis-score it) and the field noted in `warnings`.
pub fn record_from_cells_noting(cells: &[(String, String)], row: usize, warnings: &mut Vec<RowError>) -> EhrRecord {
    match gold_and_record(cells, row) {
        Ok(rec) => rec,
        Err((mut rec, e)) => {
            rec.gold = None;
            warnings.push(e);
            rec
        }
    }
}

fn gold_and_record(cells: &[(String, String)], row: usize) -> Result<EhrRecord, (EhrRecord, RowError)> {
    let mut rec = EhrRecord::default();
    let mut dx_principal: Option<(String, String)> = None;
    let mut dx_other: BTreeMap<usize, (String, String)> = BTreeMap::new();
    let mut px_principal: Option<(String, String)> = None;
    let mut px_other: BTreeMap<usize, (String, String)> = BTreeMap::new();
    let mut ccl_other: Vec<String> = Vec::new();

    for (key, text) in cells {
        let key = key.trim();
        let text = text.trim();
        if ID_KEYS.contains(&key) {
            rec.record_id = text.to_owned();
        } else if let Some(section) = Section::from_key(key) {
            // Two headings of one section (手术记录 and 有创操作记录) are both kept, in order.
            if !text.is_empty() {
                let slot = rec.sections.entry(section).or_default();
                if !slot.is_empty() {
                    slot.push('\n');
                }
                slot.push_str(text);
            }
        } else if DX_PRINCIPAL.contains(&key) {
            dx_principal.get_or_insert_with(Default::default).0 = text.to_owned();
        } else if DX_PRINCIPAL_NAME.contains(&key) {
            dx_principal.get_or_insert_with(Default::default).1 = text.to_owned();
        } else if key == PX_PRINCIPAL {
            px_principal.get_or_insert_with(Default::default).0 = text.to_owned();
        } else if key == PX_PRINCIPAL_NAME {
            px_principal.get_or_insert_with(Default::default).1 = text.to_owned();
        } else if key == "其他诊断编码" {
            ccl_other = text.split([';', '；', ',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        } else if let Some((n, is_name)) = numbered(key, DX_OTHER, DX_OTHER_NAME) {
            let slot = dx_other.entry(n).or_default();
            if is_name { slot.1 = text.to_owned() } else { slot.0 = text.to_owned() }
        } else if let Some((n, is_name)) = numbered(key, &[PX_OTHER], &[PX_OTHER_NAME]) {
            let slot = px_other.entry(n).or_default();
            if is_name { slot.1 = text.to_owned() } else { slot.0 = text.to_owned() }
        } else if !text.is_empty() {
            rec.extra.insert(key.to_owned(), text.to_owned());
        }
    }
    if rec.record_id.is_empty() {
        rec.record_id = format!("row-{row}");
    }

    let gold = (|| -> Result<Gold, RowError> {
        let mut gold = Gold::default();
        let mut push_dx = |code: &str, name: &str, field: &str| -> Result<(), RowError> {
            if code.is_empty() {
                return Ok(());
            }
            check_code(code, row, field)?;
            gold.diseases.push(code.to_owned());
            gold.disease_names.push(name.to_owned());
            Ok(())
        };
        if let Some((c, n)) = &dx_principal {
            push_dx(c, n, "主要诊断编码")?;
        }
        for (i, (c, n)) in &dx_other {
            push_dx(c, n, &format!("出院其他诊断编码{i}"))?;
        }
        for c in &ccl_other {
            push_dx(c, "", "其他诊断编码")?;
        }
        if let Some((c, n)) = &px_principal {
            if !c.is_empty() {
                check_code(c, row, PX_PRINCIPAL)?;
                gold.procedures.push(c.clone());
                gold.procedure_names.push(n.clone());
            }
        }
        for (i, (c, n)) in &px_other {
            if !c.is_empty() {
                check_code(c, row, &format!("{PX_OTHER}{i}"))?;
                gold.procedures.push(c.clone());
                gold.procedure_names.push(n.clone());
            }
        }
        if gold.disease_names.iter().all(String::is_empty) {
            gold.disease_names.clear();
        }
        if gold.procedure_names.iter().all(String::is_empty) {
            gold.procedure_names.clear();
        }
        Ok(gold)
    })();
    match gold {
        Ok(gold) => {
            if !gold.is_empty() {
                rec.gold = Some(gold);
            }
            Ok(rec)
        }
        Err(e) => Err((rec, e)),
    }
}

/// `出院其他诊断编码12` → (12, false); `出院其他诊断名称3` → (3, true).
fn numbered(key: &str, code_prefixes: &[&str], name_prefixes: &[&str]) -> Option<(usize, bool)> {
    for (prefixes, is_name) in [(code_prefixes, false), (name_prefixes, true)] {
        for p in prefixes {
            if let Some(rest) = key.strip_prefix(p) {
                if let Ok(n) = rest.trim().parse::<usize>() {
                    return Some((n, is_name));
                }
            }
        }
    }
    None
}

/// A code must look like an ICD-10 or ICD-9-CM-3 code (I25.103, I10.x00x032, 36.0700x004,
/// A01.000x003+G01*); anything else is a data-entry error worth naming.
pub fn check_code(code: &str, row: usize, field: &str) -> Result<(), RowError> {
    let ok = code.len() <= 24
        && code.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '*' | '†'));
    if ok {
        Ok(())
    } else {
        Err(RowError { row, field: field.to_owned(), message: format!("not a code: {code:?}") })
    }
}

pub fn read_csv<R: std::io::Read>(reader: R) -> Result<ReadOutcome, String> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut out = ReadOutcome::default();
    for (i, rec) in rdr.records().enumerate() {
        let row = i + 2;
        match rec {
            Ok(rec) => {
                if rec.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                let cells: Vec<(String, String)> =
                    headers.iter().cloned().zip(rec.iter().map(str::to_owned)).collect();
                let rec = record_from_cells_noting(&cells, row, &mut out.warnings);
                out.records.push(rec);
                out.record_rows.push(row);
            }
            Err(e) => out.errors.push(RowError { row, field: "(row)".into(), message: e.to_string() }),
        }
    }
    Ok(out)
}

/// A file that arrived as bytes (an upload), by its name's extension: JSON, JSONL, CSV, XLSX.
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<ReadOutcome, String> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let text = || std::str::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8 text"));
    match ext.as_str() {
        "json" => read_json_text(text()?),
        "jsonl" | "ndjson" => Ok(read_jsonl_text(text()?)),
        "csv" => read_csv(bytes),
        "xlsx" | "xlsm" => {
            let wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).map_err(|e| format!("{name}: {e}"))?;
            read_workbook(wb)
        }
        _ => Err(format!("{name}: records are read from .json, .jsonl, .csv or .xlsx files")),
    }
}

pub fn read_xlsx(path: &Path) -> Result<ReadOutcome, String> {
    read_workbook(calamine::open_workbook_auto(path).map_err(|e| e.to_string())?)
}

fn read_workbook<RS: std::io::Read + std::io::Seek>(mut wb: calamine::Sheets<RS>) -> Result<ReadOutcome, String> {
    use calamine::{Data, Reader};
    let sheet = wb.sheet_names().first().cloned().ok_or("the workbook has no sheet")?;
    let range = wb.worksheet_range(&sheet).map_err(|e| e.to_string())?;
    let mut rows = range.rows();
    let Some(header) = rows.next() else { return Ok(ReadOutcome::default()) };
    let headers: Vec<String> = header.iter().map(|c| c.to_string().trim().to_owned()).collect();
    let mut out = ReadOutcome::default();
    for (i, r) in rows.enumerate() {
        let row = i + 2;
        let mut cells = Vec::with_capacity(headers.len());
        let mut bad = None;
        for (h, c) in headers.iter().zip(r.iter()) {
            let text = match c {
                Data::Empty => String::new(),
                Data::String(s) => s.clone(),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
                Data::Float(f) => f.to_string(),
                Data::Int(n) => n.to_string(),
                Data::Bool(b) => b.to_string(),
                Data::Error(e) => {
                    bad = Some(RowError { row, field: h.clone(), message: format!("cell error {e:?}") });
                    break;
                }
                other => other.to_string(),
            };
            cells.push((h.clone(), text));
        }
        if let Some(e) = bad {
            out.errors.push(e);
            continue;
        }
        if cells.iter().all(|(_, t)| t.trim().is_empty()) {
            continue;
        }
        let rec = record_from_cells_noting(&cells, row, &mut out.warnings);
        out.records.push(rec);
        out.record_rows.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccl_layout_with_chinese_keys_and_unknown_keys_kept() {
        let v: Value = serde_json::json!({
            "病案标识": "ZY1", "主诉": "胸闷", "入院诊断": "1.冠心病", "主要诊断编码": "I20.000",
            "其他诊断编码": "I10.x00x032;E11.900", "护理记录": "夜间安静"
        });
        let r = record_from_json(&v, 1).unwrap();
        assert_eq!(r.record_id, "ZY1");
        assert_eq!(r.text(Section::AdmissionDiagnosis), "1.冠心病");
        assert_eq!(r.extra.get("护理记录").map(String::as_str), Some("夜间安静"));
        assert_eq!(r.gold.unwrap().diseases, vec!["I20.000", "I10.x00x032", "E11.900"]);
    }

    #[test]
    fn two_headings_of_one_section_are_both_kept_in_order() {
        let v: Value = serde_json::json!({ "病案标识": "Z", "手术记录": "PCI", "操作记录": "右股静脉置管", "出院诊断": "冠心病" });
        let r = record_from_json(&v, 1).unwrap();
        assert_eq!(r.text(Section::OperativeReport), "PCI\n右股静脉置管");
        assert!(r.extra.is_empty());
    }

    #[test]
    fn jointcoder_sheet_columns_make_ordered_gold() {
        let cells: Vec<(String, String)> = [
            ("ID", "7"), ("出院诊断", "冠心病"), ("出院主要诊断编码", "I25.103"), ("出院主要诊断名称", "冠状动脉粥样硬化性心脏病"),
            ("出院其他诊断编码2", "E11.900"), ("出院其他诊断编码1", "I10.x00x032"),
            ("主要手术操作编码", "36.0700"), ("其他手术操作编码1", "00.6600x004"), ("其他手术操作编码2", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let r = record_from_cells(&cells, 2).unwrap();
        let g = r.gold.unwrap();
        assert_eq!(g.diseases, vec!["I25.103", "I10.x00x032", "E11.900"]);
        assert_eq!(g.procedures, vec!["36.0700", "00.6600x004"]);
        assert_eq!(g.disease_names[0], "冠状动脉粥样硬化性心脏病");
    }

    #[test]
    fn bad_rows_are_reported_and_others_read() {
        let text = "{\"ID\":\"a\",\"主诉\":\"胸痛\"}\n{not json}\n{\"ID\":\"c\",\"主诉\":{\"x\":1},\"现病史\":\"胸闷\"}\n{\"ID\":\"d\",\"gold\":{\"diseases\":[\"冠心病\"]}}\n{\"ID\":\"e\",\"rationale\":{\"why\":[1,2]},\"meta\":[{\"k\":1}],\"院区\":\"东院\"}\n[1]\n";
        let out = read_jsonl_text(text);
        // Only what is not a record at all is lost; a bad known field is skipped and named.
        assert_eq!(out.records.iter().map(|r| r.record_id.as_str()).collect::<Vec<_>>(), vec!["a", "c", "d", "e"]);
        assert_eq!(out.errors.iter().map(|e| (e.row, e.field.as_str())).collect::<Vec<_>>(), vec![(2, "(line)"), (6, "(record)")]);
        assert_eq!(out.warnings.iter().map(|e| (e.row, e.field.as_str())).collect::<Vec<_>>(), vec![(3, "主诉"), (4, "gold")]);
        let c = &out.records[1];
        assert!(!c.has(Section::ChiefComplaint) && c.text(Section::PresentIllness) == "胸闷");
        assert!(out.records[2].gold.is_none(), "a gold set with a non-code is dropped, not half kept");
        // Unknown keys: text kept, any other JSON ignored.
        let e = &out.records[3];
        assert_eq!(e.extra.get("院区").map(String::as_str), Some("东院"));
        assert!(!e.extra.contains_key("rationale") && !e.extra.contains_key("meta"));
    }

    #[test]
    fn csv_rows_keep_row_numbers() {
        let csv = "病案标识,出院诊断,出院主要诊断编码\nA,冠心病,I25.103\nB,房颤,not a code!\n,,\nC,心衰,I50.908\n";
        let out = read_csv(csv.as_bytes()).unwrap();
        assert_eq!(out.records.len(), 3, "the row with a bad code is read without its gold");
        assert!(out.records[1].gold.is_none() && out.records[1].has(Section::DischargeDiagnosis));
        assert_eq!(out.warnings[0].row, 3);
        assert_eq!(out.warnings[0].field, "主要诊断编码");
    }
}
