//! CodeSystem, ValueSet and ConceptMap shapes for the Chinese editions.

use serde_json::{json, Value};

use crate::terminology::{Candidate, CodeSystem, Concept, Translation};

/// The CodeSystem resource. Without a page it carries metadata only (`content: not-present`,
/// `count` says how many concepts there are); with a page it carries that slice
/// (`content: fragment`), so a 37k-concept table never goes out in one response.
pub fn code_system(cs: &CodeSystem, page: Option<(usize, usize)>) -> Value {
    let mut v = json!({
        "resourceType": "CodeSystem",
        "id": cs.meta.id,
        "url": cs.meta.url,
        "version": cs.meta.version,
        "name": cs.meta.id.replace('-', "_").to_uppercase(),
        "title": cs.meta.title,
        "status": "active",
        "experimental": false,
        "caseSensitive": true,
        "hierarchyMeaning": "is-a",
        "valueSet": implicit_value_set_url(cs),
        "content": "not-present",
        "count": cs.selectable().count(),
        "property": [
            { "code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code" },
            { "code": "child", "uri": "http://hl7.org/fhir/concept-properties#child", "type": "code" },
            { "code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable", "type": "boolean" }
        ]
    });
    if let Some((offset, count)) = page {
        let concepts: Vec<Value> = cs
            .concepts
            .iter()
            .skip(offset)
            .take(count)
            .map(|c| {
                let mut cv = json!({ "code": c.code, "display": c.name });
                if !c.selectable {
                    cv["property"] = json!([{ "code": "notSelectable", "valueBoolean": true }]);
                }
                cv
            })
            .collect();
        v["content"] = json!("fragment");
        v["concept"] = Value::Array(concepts);
    }
    v
}

/// FHIR's convention for "all codes of this system" as a ValueSet.
pub fn implicit_value_set_url(cs: &CodeSystem) -> String {
    format!("{}?vs", cs.meta.url)
}

pub fn lookup(cs: &CodeSystem, c: &Concept) -> Value {
    let mut params = vec![
        json!({ "name": "name", "valueString": cs.meta.title }),
        json!({ "name": "version", "valueString": cs.meta.version }),
        json!({ "name": "display", "valueString": c.name }),
        json!({ "name": "abstract", "valueBoolean": !c.selectable }),
    ];
    if let Some(p) = cs.parent(&c.code) {
        params.push(json!({ "name": "property", "part": [
            { "name": "code", "valueCode": "parent" },
            { "name": "value", "valueCode": p.code },
            { "name": "description", "valueString": p.name }
        ]}));
    }
    for ch in cs.children(&c.code) {
        params.push(json!({ "name": "property", "part": [
            { "name": "code", "valueCode": "child" },
            { "name": "value", "valueCode": ch.code },
            { "name": "description", "valueString": ch.name }
        ]}));
    }
    let parts = crate::terminology::codesystem::parse_code_parts(&c.code);
    if let Some(ast) = parts.asterisk {
        params.push(json!({ "name": "property", "part": [
            { "name": "code", "valueCode": "asterisk" },
            { "name": "value", "valueCode": ast }
        ]}));
        params.push(json!({ "name": "property", "part": [
            { "name": "code", "valueCode": "dagger" },
            { "name": "value", "valueCode": parts.main }
        ]}));
    }
    params.push(json!({ "name": "designation", "part": [
        { "name": "language", "valueCode": "zh-CN" },
        { "name": "value", "valueString": c.name }
    ]}));
    json!({ "resourceType": "Parameters", "parameter": params })
}

pub fn validate_code(result: bool, cs: &CodeSystem, concept: Option<&Concept>, message: Option<&str>) -> Value {
    let mut params = vec![json!({ "name": "result", "valueBoolean": result })];
    if let Some(c) = concept {
        params.push(json!({ "name": "display", "valueString": c.name }));
        params.push(json!({ "name": "code", "valueCode": c.code }));
    }
    params.push(json!({ "name": "system", "valueUri": cs.meta.url }));
    params.push(json!({ "name": "version", "valueString": cs.meta.version }));
    if let Some(m) = message {
        params.push(json!({ "name": "message", "valueString": m }));
    }
    json!({ "resourceType": "Parameters", "parameter": params })
}

pub fn expansion(cs: &CodeSystem, items: &[(&str, &str)], total: Option<usize>, offset: usize, filter: Option<&str>) -> Value {
    let contains: Vec<Value> = items
        .iter()
        .map(|(code, display)| json!({ "system": cs.meta.url, "version": cs.meta.version, "code": code, "display": display }))
        .collect();
    let mut parameter = vec![json!({ "name": "offset", "valueInteger": offset }), json!({ "name": "count", "valueInteger": items.len() })];
    if let Some(f) = filter {
        parameter.push(json!({ "name": "filter", "valueString": f }));
    }
    let mut exp = json!({
        "identifier": format!("urn:uuid:{}", crate::ids::new_uuid()),
        "timestamp": crate::ids::now_rfc3339(),
        "offset": offset,
        "parameter": parameter,
        "contains": contains
    });
    if let Some(t) = total {
        exp["total"] = json!(t);
    }
    json!({
        "resourceType": "ValueSet",
        "url": implicit_value_set_url(cs),
        "version": cs.meta.version,
        "status": "active",
        "compose": { "include": [{ "system": cs.meta.url, "version": cs.meta.version }] },
        "expansion": exp
    })
}

pub fn candidates_as_items(cands: &[Candidate]) -> Vec<(&str, &str)> {
    cands.iter().map(|c| (c.code.as_str(), c.name.as_str())).collect()
}

pub fn translate(target: &CodeSystem, tr: Option<&Translation>, concept_map_url: &str) -> Value {
    let mut params = vec![json!({ "name": "result", "valueBoolean": tr.is_some() })];
    match tr {
        Some(t) => {
            let display = target.get(t.code()).map(|c| c.name.clone()).unwrap_or_default();
            let equivalence = match t {
                Translation::Mapped(_) => "equivalent",
                Translation::Identical(_) => "equal",
            };
            params.push(json!({ "name": "match", "part": [
                { "name": "equivalence", "valueCode": equivalence },
                { "name": "concept", "valueCoding": {
                    "system": target.meta.url, "version": target.meta.version, "code": t.code(), "display": display } },
                { "name": "source", "valueUri": concept_map_url }
            ]}));
        }
        None => params.push(json!({ "name": "message", "valueString": format!("no counterpart in {}", target.meta.id) })),
    }
    json!({ "resourceType": "Parameters", "parameter": params })
}

pub fn concept_map_summary(id: &str, url: &str, source: &CodeSystem, target: &CodeSystem) -> Value {
    json!({
        "resourceType": "ConceptMap",
        "id": id,
        "url": url,
        "version": format!("{}-{}", source.meta.version, target.meta.version),
        "name": id.replace('-', "_").to_uppercase(),
        "title": format!("{} → {}", source.meta.title, target.meta.title),
        "status": "active",
        "sourceUri": implicit_value_set_url(source),
        "targetUri": implicit_value_set_url(target)
    })
}

