//! The standard search parameters every search here reads the same way (R4 search.html):
//! `_id`, `_count` (0: the total alone), `_offset`, `_total`, `_summary`, `_elements`,
//! `_sort` by `_lastUpdated`, and what is done with a parameter the server cannot honour.
//!
//! Like HAPI, an unknown or unsupported parameter is ignored by default and under
//! `Prefer: handling=lenient`, and the searchset says so in an OperationOutcome entry
//! (`search.mode = outcome`); `Prefer: handling=strict` makes it a 400. A supported parameter
//! with a malformed value is a 400 either way: guessing what it meant would answer another
//! question.

use actix_web::HttpRequest;
use serde_json::{json, Value};

use super::error::ApiError;
use super::format::url_pairs;

/// Paging deeper than this is refused rather than computed (and can never overflow).
const MAX_OFFSET: usize = 1_000_000_000;
/// The page size without `_count`, and the most one page holds.
const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 500;

/// Parameters that shape the answer, not the matches; kept out of the filters.
const FORMAT_PARAMS: &[&str] = &["_format", "_pretty"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// A search as the server reads it: what it filters on, which page, how the page is shaped,
/// and what it ignored.
#[derive(Debug, Clone)]
pub struct Search {
    /// The type's own parameters, and `_id` (comma-separated ids, any of them).
    pub filters: Vec<(String, String)>,
    pub count: usize,
    pub offset: usize,
    /// `_count=0` or `_summary=count`: the total, no entries.
    pub count_only: bool,
    /// `_total=none`: no total.
    pub no_total: bool,
    pub order: Order,
    /// `_elements`: the top-level elements to keep (besides id, meta, resourceType).
    elements: Option<Vec<String>>,
    /// `_summary=data`: everything but the narrative.
    without_text: bool,
    /// Parameters honoured, in order, for the `self` and `next` links.
    used: Vec<(String, String)>,
    /// (parameter, why) for each ignored one.
    pub ignored: Vec<(String, String)>,
}

impl Search {
    /// Reads the query of `req`; `allowed` are the type's own search parameters.
    pub fn read(req: &HttpRequest, allowed: &[&str]) -> Result<Search, ApiError> {
        let strict = prefers_strict(req);
        let mut s = Search {
            filters: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            count_only: false,
            no_total: false,
            order: Order::OldestFirst,
            elements: None,
            without_text: false,
            used: Vec::new(),
            ignored: Vec::new(),
        };
        for (k, v) in url_pairs(req.query_string()) {
            let mut honoured = true;
            match k.as_str() {
                "_count" => {
                    let n: usize = v.parse().map_err(|_| ApiError::bad_request(format!("_count must be a non-negative number, not {v:?}")))?;
                    s.count_only |= n == 0;
                    s.count = n.clamp(1, MAX_COUNT);
                    honoured = false; // written by the links themselves
                }
                "_offset" => {
                    s.offset = v.parse().ok().filter(|o| *o <= MAX_OFFSET).ok_or_else(|| ApiError::bad_request(format!("_offset must be a number from 0 to {MAX_OFFSET}, not {v:?}")))?;
                    honoured = false;
                }
                "_id" => {
                    if v.split(',').any(|id| id.is_empty()) {
                        return Err(ApiError::bad_request(format!("_id must be ids separated by commas, not {v:?}")));
                    }
                    s.filters.push((k.clone(), v.clone()));
                }
                "_total" => match v.as_str() {
                    "none" => s.no_total = true,
                    // The total is always counted exactly.
                    "accurate" | "estimate" => {}
                    _ => return Err(ApiError::bad_request(format!("_total is none, estimate or accurate, not {v:?}"))),
                },
                "_summary" => match v.as_str() {
                    "count" => s.count_only = true,
                    "data" => s.without_text = true,
                    "false" => {}
                    "true" | "text" => {
                        honoured = false;
                        s.unsupported(strict, &k, &format!("_summary={v} is not supported here: whole resources are returned"))?;
                    }
                    _ => return Err(ApiError::bad_request(format!("_summary is true, text, data, count or false, not {v:?}"))),
                },
                "_elements" => {
                    let names: Vec<String> = v.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
                    if names.iter().any(|n| n.contains('.')) {
                        honoured = false;
                        s.unsupported(strict, &k, "_elements names top-level elements only here: whole resources are returned")?;
                    } else {
                        s.elements = Some(names);
                    }
                }
                "_sort" => match v.as_str() {
                    "_lastUpdated" => s.order = Order::OldestFirst,
                    "-_lastUpdated" => s.order = Order::NewestFirst,
                    _ => {
                        honoured = false;
                        s.unsupported(strict, &k, &format!("_sort={v} is not supported here (only _lastUpdated and -_lastUpdated): sorted by _lastUpdated"))?;
                    }
                },
                p if FORMAT_PARAMS.contains(&p) => honoured = false,
                p if allowed.contains(&p) => s.filters.push((k.clone(), v.clone())),
                p => {
                    honoured = false;
                    let why = format!("search parameter {p} is not supported here (supported: _id, {}): ignored", allowed.join(", "));
                    s.unsupported(strict, p, &why)?;
                }
            }
            if honoured {
                s.used.push((k, v));
            }
        }
        Ok(s)
    }

    fn unsupported(&mut self, strict: bool, param: &str, why: &str) -> Result<(), ApiError> {
        if strict {
            return Err(ApiError::bad_request(format!("{} (Prefer: handling=strict)", why.trim_end_matches(": ignored"))));
        }
        self.ignored.push((param.to_owned(), why.to_owned()));
        Ok(())
    }

    /// The ids `_id` asks for, if it does.
    pub fn ids(&self) -> Option<Vec<&str>> {
        self.filters.iter().find(|(k, _)| k == "_id").map(|(_, v)| v.split(',').collect())
    }

    /// Whether `id` is one `_id` asks for (every id, without `_id`).
    pub fn id_matches(&self, id: &str) -> bool {
        self.ids().is_none_or(|ids| ids.contains(&id))
    }

    /// The type's own filters, without `_id`.
    pub fn type_filters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.filters.iter().filter(|(k, _)| k != "_id").map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn link(&self, base: &str, ty: &str, offset: usize) -> String {
        let mut query: String = self.used.iter().map(|(k, v)| format!("{}={}&", enc(k), enc(v))).collect();
        if self.count_only {
            query.push_str("_count=0");
        } else {
            query.push_str(&format!("_count={}&_offset={offset}", self.count));
        }
        format!("{base}/{ty}?{query}")
    }

    /// The page this search asks for out of everything that matched, in memory (the
    /// terminology's searches: a few resources).
    pub fn page_of(&self, mut all: Vec<Value>) -> (Vec<Value>, usize) {
        let total = all.len();
        if self.order == Order::NewestFirst {
            all.reverse();
        }
        let page = if self.count_only { Vec::new() } else { all.into_iter().skip(self.offset).take(self.count).collect() };
        (page, total)
    }

    /// The searchset: `page` (already this search's page, in order) out of `total` matches,
    /// shaped as `_elements`/`_summary` ask, with `self` and `next` links and an
    /// OperationOutcome entry for what was ignored.
    pub fn bundle(&self, base: &str, ty: &str, page: Vec<Value>, total: usize) -> Value {
        let mut links = vec![json!({ "relation": "self", "url": self.link(base, ty, self.offset) })];
        if !self.count_only && self.offset.saturating_add(self.count) < total {
            links.push(json!({ "relation": "next", "url": self.link(base, ty, self.offset + self.count) }));
        }
        let mut entries: Vec<Value> = if self.count_only {
            Vec::new()
        } else {
            page.into_iter()
                .map(|r| {
                    let full = format!("{base}/{}/{}", r["resourceType"].as_str().unwrap_or(ty), r["id"].as_str().unwrap_or(""));
                    json!({ "fullUrl": full, "resource": self.shape(r), "search": { "mode": "match" } })
                })
                .collect()
        };
        if !self.ignored.is_empty() {
            let issues: Vec<Value> = self
                .ignored
                .iter()
                .map(|(p, why)| json!({ "severity": "warning", "code": "not-supported", "diagnostics": why, "expression": [p] }))
                .collect();
            entries.push(json!({ "resource": { "resourceType": "OperationOutcome", "issue": issues }, "search": { "mode": "outcome" } }));
        }
        let mut bundle = json!({ "resourceType": "Bundle", "type": "searchset", "link": links });
        if !self.no_total {
            bundle["total"] = json!(total);
        }
        if !entries.is_empty() {
            bundle["entry"] = json!(entries);
        }
        bundle
    }

    /// `_elements` and `_summary=data`: a subset, tagged SUBSETTED as R4 asks.
    fn shape(&self, mut r: Value) -> Value {
        let Some(map) = r.as_object_mut() else { return r };
        let before = map.len();
        if let Some(keep) = &self.elements {
            map.retain(|k, _| ["resourceType", "id", "meta"].contains(&k.as_str()) || keep.iter().any(|e| e == k));
        }
        if self.without_text {
            map.shift_remove("text");
        }
        if map.len() < before {
            let tag = json!({ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED", "display": "subsetted" });
            let meta = map.entry("meta").or_insert_with(|| json!({}));
            match meta.get_mut("tag").and_then(Value::as_array_mut) {
                Some(tags) => tags.push(tag),
                None => meta["tag"] = json!([tag]),
            }
        }
        r
    }
}

/// `Prefer: handling=strict` (RFC 7240; R4 search.html#errors). Lenient otherwise.
fn prefers_strict(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("Prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~/,:".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
