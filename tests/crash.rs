//! Nothing acknowledged is lost: the real binary is killed with SIGKILL while clients are
//! coding documents, restarted on the same data directory, and every resource acknowledged
//! before the kill must still be readable.
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn start(data: &std::path::Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_jointcoder"))
        .args(["--data-dir"])
        .arg(data)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("JOINTCODER_TERMINOLOGY_DIR", common::terminology_dir())
        .env("JOINTCODER_AUTO_TRAIN", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_ok() && common::get(&addr, "/fhir/metadata").status == 200 {
            return child;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("server did not start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start(data.path(), port);
    let addr = format!("127.0.0.1:{port}");
    let body = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap();
    // A finished bulk export, which billing may still be fetching when the server restarts.
    while common::post_json(&addr, "/fhir/Bundle/$code", &body).status != 200 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = common::request(&addr, "GET", "/fhir/$export?_type=Claim", &[("Prefer", "respond-async")], b"");
    assert_eq!(r.status, 202, "{}", r.body);
    let status_path = format!("/fhir{}", r.header("content-location").unwrap().split_once("/fhir").unwrap().1);
    let finished = loop {
        let s = common::get(&addr, &status_path);
        if s.status == 200 {
            break s.json();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (addr, body, acked, stop) = (addr.clone(), body.clone(), acked.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A killed server answers nothing; the client stops there.
                let Ok(r) = std::panic::catch_unwind(|| common::post_json(&addr, "/fhir/Bundle/$code", &body)) else { break };
                if r.status != 200 {
                    continue;
                }
                let b = r.json();
                for e in b["entry"].as_array().unwrap() {
                    let res = &e["resource"];
                    if res["resourceType"] == "Claim" || res["resourceType"] == "Condition" {
                        acked.lock().unwrap().push((res["resourceType"].as_str().unwrap().into(), res["id"].as_str().unwrap().into()));
                    }
                }
            }
        }));
    }
    // Let some requests be acknowledged, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40, "only {} resources acknowledged before the kill", acked.len());

    let port2 = free_port();
    let mut child = start(data.path(), port2);
    let addr2 = format!("127.0.0.1:{port2}");
    let missing: Vec<&(String, String)> =
        acked.iter().filter(|(ty, id)| common::get(&addr2, &format!("/fhir/{ty}/{id}")).status != 200).collect();
    // The export made before the kill is still there, with its file.
    let after = common::get(&addr2, &status_path);
    assert_eq!(after.status, 200, "{}", after.body);
    let after = after.json();
    assert_eq!(after["output"][0]["count"], finished["output"][0]["count"]);
    let file = format!("/fhir{}", after["output"][0]["url"].as_str().unwrap().split_once("/fhir").unwrap().1);
    assert_eq!(common::get(&addr2, &file).body.lines().count() as u64, finished["output"][0]["count"].as_u64().unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(missing.is_empty(), "{} of {} acknowledged resources lost: {:?}", missing.len(), acked.len(), &missing[..missing.len().min(5)]);
}
