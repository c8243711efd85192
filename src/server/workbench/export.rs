//! The coded cases as the paper's result sheet: one row per case, 病案标识 then the principal
//! and other diagnosis codes, then the principal and other procedure codes, as reviewed (a
//! rejected code is left out, a corrected one is the coder's). `jointcoder` reads the same
//! layout back as gold codes (`record::io`), so an exported sheet can be evaluated or trained on.

use serde_json::Value;

use super::case::{is_rejected, Case};

/// Headers and rows of the sheet.
pub fn sheet(cases: &[Case]) -> (Vec<String>, Vec<Vec<String>>) {
    let codes = |rs: &[Value]| -> Vec<String> {
        rs.iter().filter(|r| !is_rejected(r)).filter_map(|r| r["code"]["coding"][0]["code"].as_str().map(str::to_owned)).collect()
    };
    let coded: Vec<(String, Vec<String>, Vec<String>)> = cases.iter().map(|c| (c.record_id.clone(), codes(&c.conditions), codes(&c.procedures))).collect();
    let other_dx = coded.iter().map(|(_, d, _)| d.len().saturating_sub(1)).max().unwrap_or(0);
    let other_px = coded.iter().map(|(_, _, p)| p.len().saturating_sub(1)).max().unwrap_or(0);
    let mut headers = vec!["病案标识".to_owned(), "出院主要诊断编码".to_owned()];
    headers.extend((1..=other_dx).map(|i| format!("出院其他诊断编码{i}")));
    headers.push("主要手术操作编码".to_owned());
    headers.extend((1..=other_px).map(|i| format!("其他手术操作编码{i}")));
    let rows = coded
        .into_iter()
        .map(|(id, dx, px)| {
            let mut row = vec![id, dx.first().cloned().unwrap_or_default()];
            row.extend((1..=other_dx).map(|i| dx.get(i).cloned().unwrap_or_default()));
            row.push(px.first().cloned().unwrap_or_default());
            row.extend((1..=other_px).map(|i| px.get(i).cloned().unwrap_or_default()));
            row
        })
        .collect();
    (headers, rows)
}

pub fn csv(cases: &[Case]) -> Result<Vec<u8>, String> {
    let (headers, rows) = sheet(cases);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(&r).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

pub fn xlsx(cases: &[Case]) -> Result<Vec<u8>, String> {
    let (headers, rows) = sheet(cases);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("编码结果").map_err(|e| e.to_string())?;
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, h).map_err(|e| e.to_string())?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, v).map_err(|e| e.to_string())?;
        }
    }
    book.save_to_buffer().map_err(|e| e.to_string())
}
