//! A bounded mutation fuzzer over every write and operation endpoint of a real server on
//! loopback (authentication off, so that every request reaches its handler): seed requests
//! mutated in their path, query, headers and body, from a fixed seed so that a failure can be
//! replayed. Asserts no 5xx (but a 503 that says it is throttling or timing out), no hang and
//! no panic, and that the server still answers afterwards. Runs for a bounded number of
//! requests or a bounded time, whichever ends first, to stay well inside CI's budget.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// splitmix64: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Seed {
    method: &'static str,
    path: String,
    body: Value,
}

fn seeds(condition_id: &str) -> Vec<Seed> {
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap()).unwrap();
    let composition = bundle["entry"][0]["resource"].clone();
    let record = json!({ "record_id": "FUZZ-1", "出院诊断": "1.冠心病 2.高血压病3级", "手术名称": "经皮冠状动脉支架置入术", "手术经过": "经右桡动脉穿刺，前降支植入支架1枚" });
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let doc_ref = json!({ "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "contentType": "application/json", "data": b64(&record.to_string()) } }] });
    let text_ref = json!({ "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "contentType": "text/plain", "data": b64("出院诊断：冠心病\n手术名称：冠状动脉造影") } }] });
    let params = json!({ "resourceType": "Parameters", "parameter": [{ "name": "resource", "resource": bundle.clone() }, { "name": "persist", "valueBoolean": false }] });
    let lookup = json!({ "resourceType": "Parameters", "parameter": [{ "name": "system", "valueUri": "icd-10-cn-clinical" }, { "name": "code", "valueCode": "I25.103" }] });
    let upload = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "system", "valueUri": "fuzz-local" }, { "name": "version", "valueString": "1" },
        { "name": "file", "valueAttachment": { "contentType": "text/csv", "data": b64("code,name\nL01,床旁心脏超声\n") } }] });
    let code_system = json!({ "resourceType": "CodeSystem", "id": "fuzz-put", "version": "1", "status": "active", "content": "complete", "concept": [{ "code": "A", "display": "b" }] });
    let condition = json!({ "resourceType": "Condition", "id": condition_id, "verificationStatus": { "coding": [{ "code": "confirmed" }] },
        "code": { "coding": [{ "system": "https://jointcoder.org/fhir/CodeSystem/icd-10-cn-clinical", "code": "I25.103" }] } });
    let binary = json!({ "resourceType": "Binary", "contentType": "text/plain", "data": b64("出院诊断：冠心病") });
    let s = |method, path: &str, body: Value| Seed { method, path: path.to_owned(), body };
    vec![
        s("POST", "/fhir/Bundle/$code?persist=false", bundle),
        s("POST", "/fhir/Composition/$code?persist=false", composition.clone()),
        s("POST", "/fhir/DocumentReference/$code?persist=false", doc_ref.clone()),
        s("POST", "/fhir/DocumentReference/$code", text_ref.clone()),
        s("POST", "/fhir/DocumentReference/$extract", text_ref),
        s("POST", "/fhir/$code", params),
        s("POST", "/fhir/Composition", composition),
        s("POST", "/fhir/DocumentReference", doc_ref),
        s("POST", "/fhir/Binary", binary),
        s("POST", "/fhir/CodeSystem/$lookup", lookup.clone()),
        s("POST", "/fhir/CodeSystem/$validate-code", lookup.clone()),
        s("POST", "/fhir/ValueSet/$expand", json!({ "resourceType": "Parameters", "parameter": [{ "name": "url", "valueUri": "icd-10-cn-clinical" }, { "name": "filter", "valueString": "冠心病" }] })),
        s("POST", "/fhir/ConceptMap/$translate", lookup),
        s("POST", "/fhir/CodeSystem/$upload-external-code-system", upload),
        s("PUT", "/fhir/CodeSystem/fuzz-put", code_system),
        s("PUT", &format!("/fhir/Condition/{condition_id}"), condition),
        s("GET", "/fhir/Condition?code=I25.103&_count=2", Value::Null),
        s("GET", "/fhir/$export?_type=Claim", Value::Null),
        s("GET", "/fhir/CodeSystem/icd-10-cn-clinical?_offset=10&_count=5", Value::Null),
    ]
}

/// A JSON value replaced by something of another shape or size.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!({ "nested": { "deeper": [1, { "x": "y" }] } }),
        2 => json!([[], {}, "", 0]),
        3 => json!(u64::MAX),
        4 => json!(-1.5e308),
        5 => json!("\u{0}\u{1f}\u{202e}%00%24code"),
        6 => json!("冠".repeat(5_000)),
        7 => json!(true),
        8 => json!("1.冠心病，".repeat(300)),
        9 => json!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script>&amp;&lt;&#0;</div>"),
        10 => json!("9".repeat(300)),
        _ => json!(""),
    }
}

/// Changes one place in a JSON tree: a value replaced, a key dropped, or a key added.
fn mutate_json(v: &mut Value, rng: &mut Rng, depth: usize) {
    match v {
        Value::Object(map) if !map.is_empty() && depth < 12 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(format!("fuzz{}", rng.below(100)), odd_value(rng));
                }
                2 => {
                    map.insert(key, odd_value(rng));
                }
                _ => mutate_json(map.get_mut(&key).unwrap(), rng, depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 12 => match rng.below(5) {
            0 => {
                items.clear();
            }
            1 => {
                let copy = items[0].clone();
                items.extend(std::iter::repeat_n(copy, 50));
            }
            _ => {
                let i = rng.below(items.len());
                mutate_json(&mut items[i], rng, depth + 1)
            }
        },
        other => *other = odd_value(rng),
    }
}

/// Byte-level damage to a body: truncation, a flipped byte, an inserted sequence.
fn mutate_bytes(body: &mut Vec<u8>, rng: &mut Rng) {
    if body.is_empty() {
        body.extend_from_slice(b"{");
        return;
    }
    match rng.below(4) {
        0 => body.truncate(rng.below(body.len())),
        1 => {
            let i = rng.below(body.len());
            body[i] ^= 1 << rng.below(8);
        }
        2 => {
            let i = rng.below(body.len());
            body.splice(i..i, rng.pick(&[&b"\xff\xfe"[..], b"\\u0000", b"{\"a\":", b"]]]]", b"\x00"]).iter().copied());
        }
        _ => body.clear(),
    }
}

/// A path with an odd encoding, a traversal, a doubled slash or a huge segment.
fn mutate_path(path: &str, rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => path.replacen('$', "%24", 1),
        1 => path.replacen("/fhir/", "/fhir//", 1),
        2 => format!("{path}/../../metadata"),
        3 => path.replacen("Condition", "%43ondition", 1).replacen("Composition", "Compositio%6E", 1),
        4 => format!("{path}{}_offset=18446744073709551615&_count=-1", if path.contains('?') { "&" } else { "?" }),
        5 => format!("{path}{}{}={}", if path.contains('?') { "&" } else { "?" }, rng.pick(&["_format", "persist", "diagnosisVersion", "procedureSystem", "_type", "_since", "makeCurrent"]), rng.pick(&["xml", "%00", "2.0", "", "x".repeat(3000).as_str()])),
        6 => format!("{path}/{}", "a".repeat(2000)),
        _ => path.to_owned(),
    }
}

fn header_set(rng: &mut Rng) -> Vec<(&'static str, String)> {
    let mut h = vec![("Content-Type", rng.pick(&["application/fhir+json", "application/json", "application/fhir+json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded"]).to_string())];
    if rng.below(4) == 0 {
        h.push(("If-None-Exist", rng.pick(&["identifier=a|b", "", "\u{7f}x", "identifier=urn:x|JC-PCI-0001"]).to_string()));
    }
    if rng.below(5) == 0 {
        h.push(("If-Match", rng.pick(&["W/\"1\"", "\"abc\"", "W/\"99999999999999999999\""]).to_string()));
    }
    if rng.below(6) == 0 {
        h.push(("Accept", rng.pick(&["application/fhir+xml", "*/*", "text/html"]).to_string()));
    }
    if rng.below(6) == 0 {
        h.push(("Prefer", "respond-async".into()));
    }
    h
}

/// One raw request; `None` when the server did not answer within the read timeout (a hang).
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        if !v.is_empty() {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return None,
        Err(_) if !raw.is_empty() => {}
        Err(_) => return None,
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

#[test]
fn mutated_requests_never_get_a_5xx_or_hang() {
    let server = common::start_server(common::test_config(std::env::temp_dir()), common::terminology().clone());
    let addr = server.addr.clone();
    // A stored Condition for the update seeds.
    let coded = common::post_json(&addr, "/fhir/Bundle/$code", &std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap());
    let condition_id = coded.json()["entry"].as_array().unwrap().iter().find(|e| e["resource"]["resourceType"] == "Condition").unwrap()["resource"]["id"].as_str().unwrap().to_owned();
    let seeds = seeds(&condition_id);

    let mut rng = Rng(0x6a63_6675_7a7a);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    while sent < 2_000 && started.elapsed() < Duration::from_secs(75) {
        let seed = rng.pick(&seeds);
        let mut body = seed.body.clone();
        for _ in 0..=rng.below(3) {
            mutate_json(&mut body, &mut rng, 0);
        }
        let mut bytes = if seed.body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        if rng.below(4) == 0 {
            mutate_bytes(&mut bytes, &mut rng);
        }
        let path = mutate_path(&seed.path, &mut rng);
        let method = if rng.below(20) == 0 { *rng.pick(&["GET", "POST", "PUT", "DELETE", "PATCH"]) } else { seed.method };
        let headers = header_set(&mut rng);
        let replay = format!("request {sent}: {method} {path} headers {headers:?} body {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
        let (status, text) = send(&addr, method, &path, &headers, &bytes).unwrap_or_else(|| panic!("no answer within 30 s: {replay}"));
        if status >= 500 {
            let throttled = status == 503 && (text.contains("\"throttled\"") || text.contains("\"timeout\""));
            assert!(throttled, "HTTP {status} for {replay}\n{text}");
        }
        *by_status.entry(status).or_default() += 1;
        sent += 1;
    }
    eprintln!("fuzz: {sent} requests in {:.1} s, by status {by_status:?}", started.elapsed().as_secs_f64());
    assert!(sent >= 200, "too few requests to mean anything ({sent})");
    assert!(by_status.keys().any(|s| *s < 300), "some mutations must still be served: {by_status:?}");
    assert_eq!(common::get(&addr, "/fhir/metadata").status, 200, "the server still answers");
    let r = common::post_json(&addr, "/fhir/Bundle/$code?persist=false", &std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap());
    assert_eq!(r.status, 200, "coding still works after the fuzz run");
}

/// The inbound mapping and the record limits alone, in process, on many more mutations than
/// the HTTP run affords: every input either maps to a record or is refused with an error,
/// never a panic.
#[test]
fn mutated_resources_map_or_are_refused() {
    let seeds: Vec<Value> = seeds("c").into_iter().map(|s| s.body).filter(|b| !b.is_null()).collect();
    let limits = jointcoder::record::limits::RecordLimits::default();
    let mut rng = Rng(0x696e_626f_756e_64);
    let (mut mapped, mut refused) = (0usize, 0usize);
    for _ in 0..20_000 {
        let mut v = rng.pick(&seeds).clone();
        for _ in 0..=rng.below(4) {
            mutate_json(&mut v, &mut rng, 0);
        }
        match jointcoder::fhir::inbound::from_resource(&v, &|_: &str| None) {
            Ok(inbound) => {
                let _ = limits.check(&inbound.record, inbound.sections_read);
                mapped += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty(), "an error says why");
                refused += 1;
            }
        }
    }
    assert!(mapped > 100 && refused > 100, "mapped {mapped}, refused {refused}");
}
