//! The command line on real files, and the XLSX batch-upload sheet through the real reader.
mod common;

use std::process::Command;

use jointcoder::record::{io, Section};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jointcoder"));
    c.env("JOINTCODER_TERMINOLOGY_DIR", common::terminology_dir()).env("JOINTCODER_AUTO_TRAIN", "0");
    c
}

#[test]
fn code_writes_one_line_per_record_and_skips_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"record_id\":\"A1\",\"出院诊断\":\"1.冠心病 2.房颤\",\"手术名称\":\"冠状动脉造影术\"}\n",
            "{broken\n",
            "{\"record_id\":\"A3\",\"discharge_diagnosis\":\"高血压3级很高危\"}\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let o = bin().args(["--data-dir"]).arg(dir.path()).arg("code").arg(&input).arg("-o").arg(&out).arg("--trace").output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("row 2"), "the bad line is reported by number: {stderr}");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["record_id"], "A1");
    let dx: Vec<&str> = lines[0]["diseases"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(dx.contains(&"I25.103") && dx.contains(&"I48.x01"), "{dx:?}");
    assert_eq!(lines[0]["names"]["I25.103"], "冠状动脉粥样硬化性心脏病");
    assert!(lines[0]["trace"].as_array().unwrap().len() >= 8);
    assert_eq!(lines[1]["diseases"][0], "I10.x00x032");
}

#[test]
fn code_fails_only_when_nothing_could_be_coded() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, "{nope\n[1,2]\n").unwrap();
    let o = bin().arg("--data-dir").arg(dir.path()).arg("code").arg(&input).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no record could be coded"));
}

#[test]
fn eval_on_a_gold_file_prints_the_metrics_table() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/records/cardiology_procedures.json");
    let o = bin().arg("--data-dir").arg(dir.path()).args(["eval", "--split", "all", "--dataset"]).arg(&fixtures).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = stdout.lines().find(|l| l.starts_with("| procedures")).expect("procedure row");
    // n=3 records; P, R and F1 all 1 on our own fixtures.
    assert!(row.starts_with("| procedures | 3 | 1.0000 | 1.0000 | 1.0000"), "{stdout}");
    let bad = bin().arg("--data-dir").arg(dir.path()).args(["eval", "--without", "nonsense"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown stage"));
}

#[test]
fn terminology_search_prints_code_name_score() {
    let o = bin().args(["terminology", "search", "房颤", "-k", "3"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let first: Vec<&str> = out.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[0], "I48.x01");
    assert_eq!(first[1], "心房颤动");
    assert!(first[2].parse::<f32>().is_ok());
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn xlsx_batch_sheet_is_read_with_row_numbers_for_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let headers = ["ID", "出院诊断", "手术名称", "出院主要诊断编码", "出院其他诊断编码1", "主要手术操作编码", "其他手术操作编码1", "护理等级"];
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    let rows = [
        ["1001", "冠心病", "冠脉造影", "I25.103", "I10.x00x032", "88.5500", "", "一级"],
        ["1002", "房颤", "", "I48.x01", "bad code!", "", "", ""],
        ["1003", "心衰", "", "I50.908", "", "", "", ""],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(r as u32 + 1, c as u16, *v).unwrap();
            }
        }
    }
    ws.write_number(4, 0, 1004.0).unwrap();
    ws.write_string(4, 1, "高血压").unwrap();
    wb.save(&path).unwrap();

    let out = io::read_path(&path).unwrap();
    let ids: Vec<&str> = out.records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, vec!["1001", "1002", "1003", "1004"], "numeric ids read without .0");
    // The row with a bad code is read without its gold, and the field is named.
    assert!(out.errors.is_empty());
    assert_eq!(out.warnings.len(), 1);
    assert_eq!(out.warnings[0].row, 3);
    assert_eq!(out.warnings[0].field, "出院其他诊断编码1");
    assert!(out.records[1].gold.is_none() && out.records[1].has(Section::DischargeDiagnosis));
    let first = &out.records[0];
    assert_eq!(first.text(Section::ProcedureName), "冠脉造影");
    assert_eq!(first.extra.get("护理等级").map(String::as_str), Some("一级"));
    let gold = first.gold.as_ref().unwrap();
    assert_eq!(gold.diseases, vec!["I25.103", "I10.x00x032"]);
    assert_eq!(gold.procedures, vec!["88.5500"]);
}
