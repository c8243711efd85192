//! The workbench's HTML: the page and its fragments. Chinese first, English on request; every
//! string of the page is written here in both.

use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use super::case::{decision_of, is_rejected, Case, CaseFilter, CaseRow};
use super::batch::{Batch, RowState};
use crate::fhir::outbound::extension;
use crate::record::Section;

/// The page's language: Chinese unless English was asked for.
#[derive(Clone, Copy, PartialEq)]
pub struct Lang {
    pub english: bool,
}

impl Lang {
    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        if self.english {
            en
        } else {
            zh
        }
    }

    fn code(self) -> &'static str {
        self.t("zh-CN", "en")
    }

    fn section(self, s: Section) -> String {
        if self.english {
            s.key().replace('_', " ")
        } else {
            s.zh()[0].to_owned()
        }
    }
}

/// htmx swaps error answers too (they are fragments that say what went wrong); only the
/// server's own origin is asked.
const HTMX_CONFIG: &str = r#"{"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}],"selfRequestsOnly":true,"historyCacheSize":0}"#;

/// The whole page around `main`. It holds no clinical data: with authentication on, what is
/// in `main` comes later, by requests that carry the token.
pub fn page(l: Lang, auth_on: bool, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (l.t("JointCoder 编码工作台", "JointCoder coding workbench")) }
                link rel="stylesheet" href="/static/workbench.css";
                script src="/static/htmx-2.0.11.min.js" {}
                script src="/static/workbench.js" defer {}
            }
            body hx-target="#main" {
                header.top {
                    h1 { "JointCoder " span.muted { (l.t("编码工作台", "coding workbench")) } }
                    nav aria-label=(l.t("导航", "Navigation")) {
                        a href="/" { (l.t("新病例", "New case")) }
                        a href="/ui/cases" hx-get="/ui/cases" hx-push-url="true" { (l.t("历史病例", "History")) }
                        span #who hx-get="/ui/whoami" hx-trigger="load" hx-target="this" {}
                        @if auth_on {
                            button type="button" onclick="document.getElementById('token-dialog').showModal()" { (l.t("访问令牌", "Access token")) }
                        } @else {
                            // Without tokens nobody is verified: the name goes with each review, marked unverified.
                            label { (l.t("审核人", "Reviewer")) " " input #reviewer-name size="8" autocomplete="name"; }
                        }
                        @if l.english { a href="?lang=zh" lang="zh-CN" { "中文" } } @else { a href="?lang=en" lang="en" { "English" } }
                    }
                }
                div #alerts role="alert" hidden {}
                main #main { (main) }
                dialog #token-dialog {
                    form #token-form method="dialog" {
                        p { (l.t("请粘贴访问令牌（Bearer token），仅保存在本浏览器标签页中。", "Paste your bearer token; it is kept in this browser tab only.")) }
                        label { (l.t("令牌", "Token")) " " input name="token" type="password" autocomplete="off" size="40"; }
                        " "
                        button.primary type="submit" { (l.t("保存", "Save")) }
                    }
                }
            }
        }
    }
}

/// A part of `main` that loads itself (with the token) once the page is there.
pub fn loading(l: Lang, url: &str) -> Markup {
    html! { div hx-get=(url) hx-trigger="load" hx-target="this" hx-swap="outerHTML" { p.muted { (l.t("加载中…", "Loading…")) } } }
}

/// The input: paste, upload, or an example; then the sections to edit; then the case.
pub fn new_case(l: Lang, examples: &[(String, String)]) -> Markup {
    html! {
        section.panel #input {
            h2 { (l.t("录入病历", "Record")) }
            div.input-grid {
                form hx-post="/ui/sections" hx-target="#editor" {
                    label for="paste" { (l.t("粘贴病历文本（按“主诉：”“出院诊断：”等标题分节）", "Paste the record (sections by their headings: 主诉：, 出院诊断：, …)")) }
                    textarea #paste name="text" required {}
                    p { button.primary type="submit" { (l.t("解析分节", "Split into sections")) } }
                }
                div {
                    form #upload hx-post="/ui/upload" hx-target="#editor" {
                        label for="file" { (l.t("上传文件（JSON、JSONL、XLSX、CSV 或 PDF；一份或一批）", "Upload a file (JSON, JSONL, XLSX, CSV or PDF; one record or a batch)")) }
                        input #file type="file" accept=".json,.jsonl,.ndjson,.xlsx,.csv,.pdf";
                        input type="hidden" name="file_name";
                        input type="hidden" name="file_b64";
                        p { button type="submit" { (l.t("上传", "Upload")) } }
                    }
                    @if !examples.is_empty() {
                        form hx-post="/ui/example" hx-target="#editor" {
                            label for="example" { (l.t("或选择示例病历", "Or pick an example record")) }
                            select #example name="n" {
                                @for (i, (id, title)) in examples.iter().enumerate() { option value=(i) { (id) " · " (title) } }
                            }
                            " "
                            button type="submit" { (l.t("打开", "Open")) }
                        }
                    }
                }
            }
        }
        div #editor {}
        div #result {}
    }
}

/// The parsed sections, editable, before coding.
pub fn sections_editor(l: Lang, record_id: &str, sections: &[(Section, String)], note: Option<&str>) -> Markup {
    let shown: Vec<Section> = {
        let mut v: Vec<Section> = sections.iter().map(|(s, _)| *s).collect();
        for must in [Section::DischargeDiagnosis, Section::ProcedureName, Section::OperativeReport] {
            if !v.contains(&must) {
                v.push(must);
            }
        }
        v.sort();
        v
    };
    let text_of = |s: Section| sections.iter().find(|(k, _)| *k == s).map(|(_, t)| t.as_str()).unwrap_or("");
    html! {
        section.panel.sections {
            h2 { (l.t("核对分节", "Check the sections")) }
            @if let Some(n) = note { p.muted { (n) } }
            form hx-post="/ui/cases" hx-target="#result" hx-indicator="#coding" hx-disabled-elt="find button[type=submit]" {
                label for="record_id" { (l.t("病案标识", "Record id")) }
                input #record_id name="record_id" value=(record_id) required maxlength="64";
                @for s in &shown {
                    label for=(format!("s-{}", s.key())) { (l.section(*s)) }
                    textarea id=(format!("s-{}", s.key())) name=(format!("s.{}", s.key())) { (text_of(*s)) }
                }
                p {
                    button.primary type="submit" { (l.t("编码", "Code")) }
                    " "
                    span #coding .htmx-indicator.muted { (l.t("编码中…", "Coding…")) }
                }
            }
        }
    }
}

/// A short message in place of a fragment.
pub fn message(class: &str, text: &str) -> Markup {
    html! { div.panel role="alert" class=(class) { p { (text) } } }
}

fn part<'a>(e: &'a Value, name: &str) -> Option<&'a Value> {
    e["extension"].as_array()?.iter().find(|p| p["url"] == name)
}

/// What the reviewer may do, from the token's scopes.
#[derive(Clone, Copy)]
pub struct Allowed {
    pub review_conditions: bool,
    pub review_procedures: bool,
    pub finish: bool,
}

/// One coded case: the record beside the results, the stage cards below.
pub fn case(l: Lang, c: &Case, allowed: Allowed) -> Markup {
    let done = c.status == "final";
    html! {
        section.panel.case #case data-case=(c.id) {
            h2 {
                (l.t("病例", "Case")) " " (c.record_id) " · "
                @if done { span.done { (l.t("已完成", "done")) } } @else { span.muted { (l.t("待审核", "to review")) } }
            }
            p.muted { (c.date) @if let Some(r) = &c.reviewer { " · " (l.t("审核人", "reviewer")) " " (r) } }
            div.case-grid {
                div.record {
                    h3 { (l.t("病历内容", "Record")) }
                    @for (s, text) in &c.record.sections {
                        h4 { (l.section(*s)) }
                        pre.sec data-section=(s.key()) { (text) }
                    }
                }
                div.results {
                    h3 { (l.t("诊断", "Diagnoses")) }
                    (codes_table(l, "Condition", &c.conditions, allowed.review_conditions))
                    h3 { (l.t("手术操作", "Procedures")) }
                    (codes_table(l, "Procedure", &c.procedures, allowed.review_procedures))
                    (finish_form(l, c, allowed.finish))
                }
            }
            h3 { (l.t("各阶段（点击展开）", "Stages (open each)")) }
            @for p in &c.stages { (stage_card(l, p, &c.devices)) }
        }
    }
}

fn finish_form(l: Lang, c: &Case, allowed: bool) -> Markup {
    let done = c.status == "final";
    html! {
        form #finish hx-post=(format!("/ui/cases/{}/finish", c.id)) hx-target="#case" hx-swap="outerHTML" {
            input type="hidden" name="version" value=(c.version);
            label for="case-note" { (l.t("病例备注", "Case note")) }
            textarea #case-note name="note" disabled[!allowed] { (c.note.as_deref().unwrap_or("")) }
            @if allowed {
                p {
                    @if done {
                        button type="submit" name="done" value="false" { (l.t("重新打开", "Reopen")) }
                    } @else {
                        button.primary type="submit" name="done" value="true" { (l.t("标记完成", "Mark done")) }
                    }
                }
            }
        }
    }
}

fn codes_table(l: Lang, ty: &str, rows: &[Value], may_review: bool) -> Markup {
    html! {
        table.codes data-type=(ty) {
            colgroup { col.rank; col.code; col; col.conf; col.origin; @if may_review { col.review; } }
            thead { tr {
                th { (l.t("序号", "Rank")) } th { (l.t("编码", "Code")) } th { (l.t("名称与证据", "Name and evidence")) }
                th { (l.t("置信度", "Conf.")) } th { (l.t("来源阶段", "Stage")) }
                @if may_review { th { (l.t("审核", "Review")) } }
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="6" .muted { (l.t("无", "none")) } } }
                @for (i, r) in rows.iter().enumerate() { (code_row(l, i + 1, r, may_review, None)) }
            }
        }
    }
}

/// One code with its evidence and review controls; `conflict` when the review was refused
/// because someone else changed it first.
pub fn code_row(l: Lang, rank: usize, r: &Value, may_review: bool, conflict: Option<&str>) -> Markup {
    let ty = r["resourceType"].as_str().unwrap_or("");
    let id = r["id"].as_str().unwrap_or("");
    let coding = &r["code"]["coding"][0];
    let confidence = coding["extension"].as_array().and_then(|e| e.iter().find_map(|x| x["valueDecimal"].as_f64()));
    let origin = extension(r, "/origin").and_then(|e| e["valueCode"].as_str()).unwrap_or("");
    let decision = decision_of(r);
    let class = match decision {
        Some("accepted") => "accepted",
        Some("corrected") => "corrected",
        _ if is_rejected(r) => "rejected",
        _ => "",
    };
    let version = r["meta"]["versionId"].as_str().unwrap_or("1");
    let mut evidence: Vec<&Value> = r["extension"].as_array().into_iter().flatten().filter(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/evidence"))).collect();
    let mut seen = std::collections::HashSet::new();
    evidence.retain(|e| seen.insert(e["extension"].to_string()));
    html! {
        tr id=(format!("row-{ty}-{id}")) class=(class) {
            td { (rank) }
            td.code { code { (coding["code"].as_str().unwrap_or("")) } }
            td.name {
                (coding["display"].as_str().unwrap_or(""))
                @if let Some(m) = r["code"]["text"].as_str() { br; span.muted { (l.t("原文：", "as written: ")) (m) } }
                @for e in &evidence {
                    @let section = part(e, "section").and_then(|p| p["valueCode"].as_str()).unwrap_or("");
                    @let start = part(e, "start").and_then(|p| p["valueInteger"].as_i64()).unwrap_or(0);
                    @let end = part(e, "end").and_then(|p| p["valueInteger"].as_i64()).unwrap_or(0);
                    @let text = part(e, "text").and_then(|p| p["valueString"].as_str()).unwrap_or("");
                    @if end > start {
                        br;
                        button.ev type="button" data-section=(section) data-start=(start) data-end=(end)
                            title=(l.t("在病历中标出证据", "Show the evidence in the record")) {
                            (l.t("证据：", "evidence: ")) (Section::from_key(section).map(|s| l.section(s)).unwrap_or_else(|| section.to_owned())) "：" span.ev-text { (text) }
                        }
                    }
                }
                @for n in r["note"].as_array().into_iter().flatten() {
                    br; span.muted { (l.t("备注 ", "note ")) (n["authorString"].as_str().unwrap_or("")) "：" (n["text"].as_str().unwrap_or("")) }
                }
            }
            td { @if let Some(c) = confidence { (format!("{c:.2}")) } }
            td.muted { (origin) }
            @if may_review {
                td.status {
                    @if let Some(msg) = conflict { p.conflict role="alert" { (msg) } }
                    @match decision {
                        Some("accepted") => { p { "✓ " (l.t("已接受", "accepted")) } }
                        Some("corrected") => { p { "✎ " (l.t("已更正", "corrected")) } }
                        Some("rejected") => { p { "✗ " (l.t("已拒绝", "rejected")) } }
                        _ => {}
                    }
                    form.review-form hx-post=(format!("/ui/review/{ty}/{id}")) hx-target="closest tr" hx-swap="outerHTML" {
                        input type="hidden" name="version" value=(version);
                        input type="hidden" name="rank" value=(rank);
                        button type="submit" name="action" value="accept" { (l.t("接受", "Accept")) }
                        button type="submit" name="action" value="reject" { (l.t("拒绝", "Reject")) }
                        input name="code" list=(format!("codes-{ty}-{id}")) placeholder=(l.t("更正为编码", "correct to code"))
                            aria-label=(l.t("更正为编码", "Correct to code"))
                            hx-post="/ui/codes" hx-vals=(serde_json::json!({ "system": coding["system"] }).to_string()) hx-trigger="input changed delay:300ms"
                            hx-target=(format!("#codes-{ty}-{id}")) hx-swap="innerHTML";
                        datalist id=(format!("codes-{ty}-{id}")) {}
                        button type="submit" name="action" value="correct" { (l.t("更正", "Correct")) }
                        input name="comment" placeholder=(l.t("备注", "comment")) aria-label=(l.t("备注", "Comment"));
                    }
                }
            }
        }
    }
}

/// The options of the code search box.
pub fn code_options(hits: &[(String, String)]) -> Markup {
    html! { @for (code, name) in hits { option value=(code) { (code) " " (name) } } }
}

fn stage_card(l: Lang, p: &Value, devices: &std::collections::HashMap<String, Value>) -> Markup {
    let out: Value = extension(p, "/stage-output")
        .and_then(|x| x["valueString"].as_str())
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let device = p["agent"][0]["who"]["reference"].as_str().and_then(|d| d.strip_prefix("Device/")).and_then(|d| devices.get(d));
    let version = |label: &str| device.and_then(|d| d["version"].as_array()).and_then(|v| v.iter().find(|x| x["type"]["text"] == label)).and_then(|x| x["value"].as_str()).unwrap_or("");
    let agent = device.and_then(|d| d["deviceName"][0]["name"].as_str()).unwrap_or("");
    let output = out["output"].as_array().cloned().unwrap_or_default();
    let removed = out["removed"].as_array().cloned().unwrap_or_default();
    let added = out["added"].as_array().cloned().unwrap_or_default();
    let notes = out["notes"].as_array().cloned().unwrap_or_default();
    let ms = out["elapsed_us"].as_f64().unwrap_or(0.0) / 1000.0;
    html! {
        details.stage {
            summary {
                strong { (p["activity"]["text"].as_str().unwrap_or("")) }
                " · " (agent) " (" (version("backend")) ", " (version("model")) ") · "
                (format!("{ms:.2} ms")) " · "
                (l.t("输入", "in")) " " (out["input"].as_u64().unwrap_or(0)) " → " (l.t("输出", "out")) " " (output.len())
                @if !added.is_empty() { " · +" (added.len()) }
                @if !removed.is_empty() { " · −" (removed.len()) }
            }
            div.body {
                @if !output.is_empty() {
                    p { strong { (l.t("输出：", "Output: ")) } }
                    ul { @for o in &output { li { code { (o["code"].as_str().unwrap_or("—")) } " " (o["name"].as_str().unwrap_or("")) } } }
                }
                @if !added.is_empty() {
                    p { strong { (l.t("新增：", "Added: ")) } @for a in &added { code { (a.as_str().unwrap_or("")) } " " } }
                }
                @if !removed.is_empty() {
                    p { strong { (l.t("删除及原因：", "Removed, and why: ")) } }
                    ul { @for r in &removed { li { code { (r["code"].as_str().unwrap_or("—")) } " " (r["name"].as_str().unwrap_or("")) " — " (r["reason"].as_str().unwrap_or("")) } } }
                }
                @if !notes.is_empty() {
                    p { strong { (l.t("推理记录：", "Reasoning: ")) } }
                    ul { @for n in &notes { li { (n.as_str().unwrap_or("")) } } }
                }
            }
        }
    }
}

/// The history: the coded cases, filtered, to reopen or export.
pub fn history(l: Lang, f: &CaseFilter, rows: &[CaseRow]) -> Markup {
    html! {
        section.panel #history {
            h2 { (l.t("历史病例", "Coded cases")) }
            form hx-get="/ui/cases" hx-target="#history" hx-swap="outerHTML" {
                label { (l.t("病案标识", "Record id")) " " input name="q" value=(f.q); } " "
                label { (l.t("日期", "Date")) " " input name="date" placeholder="2026-12-01" value=(f.date) size="10"; } " "
                label { (l.t("审核人", "Reviewer")) " " input name="reviewer" value=(f.reviewer) size="10"; } " "
                label { (l.t("状态", "Status")) " "
                    select name="status" {
                        option value="" selected[f.status.is_empty()] { (l.t("全部", "all")) }
                        option value="preliminary" selected[f.status == "preliminary"] { (l.t("待审核", "to review")) }
                        option value="final" selected[f.status == "final"] { (l.t("已完成", "done")) }
                    }
                } " "
                button type="submit" { (l.t("查找", "Search")) }
            }
            form #export-form {
                table.codes {
                    thead { tr { th { (l.t("选择", "Pick")) } th { (l.t("病案标识", "Record id")) } th { (l.t("日期", "Date")) } th { (l.t("诊断/手术", "Dx/Px")) } th { (l.t("状态", "Status")) } th { (l.t("审核人", "Reviewer")) } } }
                    tbody {
                        @if rows.is_empty() { tr { td colspan="6" .muted { (l.t("没有符合条件的病例", "No case matches")) } } }
                        @for r in rows {
                            tr {
                                td { input type="checkbox" name="ids" value=(r.id) aria-label=(r.record_id); }
                                td { a href=(format!("/ui/cases/{}", r.id)) hx-get=(format!("/ui/cases/{}", r.id)) hx-push-url="true" { (r.record_id) } }
                                td { (r.date.get(..16).unwrap_or(&r.date)) }
                                td { (r.diagnoses) " / " (r.procedures) }
                                td { @if r.status == "final" { span.done { (l.t("已完成", "done")) } } @else { (l.t("待审核", "to review")) } }
                                td { (r.reviewer.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
                p {
                    button type="button" data-download="/ui/export?format=xlsx" data-filename="jointcoder-cases.xlsx" { (l.t("导出 XLSX", "Export XLSX")) } " "
                    button type="button" data-download="/ui/export?format=csv" data-filename="jointcoder-cases.csv" { (l.t("导出 CSV", "Export CSV")) } " "
                    button type="button" data-download="/ui/feedback.jsonl" data-filename="feedback.jsonl" { (l.t("导出审核反馈 JSONL", "Export feedback JSONL")) }
                }
            }
        }
    }
}

/// A batch: a progress bar and a row per record. Polled until every row is finished.
pub fn batch(l: Lang, b: &Batch) -> Markup {
    let finished = b.rows.iter().filter(|r| matches!(r.state, RowState::Done { .. } | RowState::Failed(_))).count();
    let total = b.rows.len().max(1);
    let pct = finished * 100 / total;
    html! {
        section.panel #batch hx-get=(format!("/ui/batch/{}", b.id)) hx-trigger=[(finished < b.rows.len()).then_some("every 700ms")] hx-target="this" hx-swap="outerHTML" {
            h2 { (l.t("批量编码", "Batch")) " · " (b.name) }
            div.progress role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=(pct) { div style=(format!("width:{pct}%")) {} }
            p { (finished) " / " (b.rows.len()) }
            table.codes {
                thead { tr { th { "#" } th { (l.t("病案标识", "Record id")) } th { (l.t("状态", "State")) } } }
                tbody {
                    @for (i, r) in b.rows.iter().enumerate() {
                        tr.batch-row {
                            td { (i + 1) }
                            td { (r.record_id) }
                            @match &r.state {
                                RowState::Queued => { td.muted { (l.t("排队中", "queued")) } }
                                RowState::Coding => { td { (l.t("编码中", "coding")) } }
                                RowState::Done { case } => { td.done { (l.t("已完成", "done")) " · " a href=(format!("/ui/cases/{case}")) hx-get=(format!("/ui/cases/{case}")) hx-target="#main" hx-push-url="true" { (l.t("打开", "open")) } } }
                                RowState::Failed(why) => { td.failed { (l.t("失败：", "failed: ")) (why) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Who the token says the user is, for the header.
pub fn who(l: Lang, subject: Option<&str>) -> Markup {
    html! {
        @match subject {
            Some(s) => { span { (l.t("用户：", "User: ")) (s) } }
            None => { span.muted { (l.t("本机访问（未启用认证）", "local access (authentication off)")) } }
        }
    }
}
