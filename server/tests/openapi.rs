//! The OpenAPI document (`docs/openapi.yaml`) against the router: every route the server serves is in the
//! document with its method, and every operation of the document is served; the server serves the document
//! itself at `GET /v1/openapi.yaml`.

mod common;

use std::collections::BTreeSet;

use common::{Env, sqlite};
use facepay_core::checkout::wire::ErrorCode;
use facepay_server::app::route_table;
use facepay_server::openapi::DOCUMENT;
use yaml_rust2::{Yaml, YamlLoader};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(method, path)` of every operation in the document.
fn document_operations() -> BTreeSet<(String, String)> {
    let docs = YamlLoader::load_from_str(DOCUMENT).expect("docs/openapi.yaml is YAML");
    let doc = &docs[0];
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let paths = doc["paths"].as_hash().expect("a paths object");
    let mut ops = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path keys are strings");
        for (method, _) in item.as_hash().expect("a path item") {
            let method = method.as_str().unwrap();
            if METHODS.contains(&method) {
                ops.insert((method.to_owned(), path.to_owned()));
            }
        }
    }
    ops
}

#[test]
fn router_routes_and_document_paths_are_the_same() {
    let served: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(served.len(), route_table().len(), "a route is added twice");
    let documented = document_operations();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in docs/openapi.yaml but not served: {unserved:?}"
    );
    assert!(served.len() >= 20, "{served:?}");
}

/// Every `ErrorCode` the server can answer with, as serde names them. serde's error for an unknown variant lists
/// them all ("expected one of `a`, `b`, …"), so a code added to the enum shows up here without a second list.
fn server_error_codes() -> BTreeSet<String> {
    let err = serde_json::from_str::<ErrorCode>("\"no_such_code\"")
        .expect_err("an unknown code is refused")
        .to_string();
    let listed = err
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("serde's message lists the variants: {err}"));
    let codes: BTreeSet<String> = listed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    for code in &codes {
        let parsed: ErrorCode = serde_json::from_value(code.as_str().into()).unwrap();
        assert_eq!(parsed.as_str(), code);
    }
    codes
}

#[test]
fn the_documented_error_codes_are_the_servers() {
    let docs = YamlLoader::load_from_str(DOCUMENT).unwrap();
    let listed = docs[0]["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        .as_vec()
        .expect("components.schemas.Error lists its codes in an enum");
    let documented: BTreeSet<String> = listed
        .iter()
        .map(|c| c.as_str().expect("codes are strings").to_owned())
        .collect();
    assert_eq!(documented.len(), listed.len(), "a code is listed twice");
    let codes = server_error_codes();
    assert!(codes.len() >= 40, "{codes:?}");
    let undocumented: Vec<_> = codes.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&codes).collect();
    assert!(
        undocumented.is_empty(),
        "codes missing from docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "codes in docs/openapi.yaml the server never sends: {unknown:?}"
    );
}

#[test]
fn every_schema_reference_resolves() {
    let docs = YamlLoader::load_from_str(DOCUMENT).unwrap();
    let doc = &docs[0];
    fn refs(node: &Yaml, out: &mut Vec<String>) {
        match node {
            Yaml::Hash(h) => {
                for (k, v) in h {
                    if k.as_str() == Some("$ref") {
                        out.push(v.as_str().unwrap().to_owned());
                    }
                    refs(v, out);
                }
            }
            Yaml::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let mut node = doc;
        for part in r.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        assert!(!node.is_badvalue(), "dangling $ref {r}");
    }
}

#[tokio::test]
async fn the_server_serves_its_document() {
    let env = Env::start(sqlite(), |_| {}).await;
    let resp = env
        .http
        .get(format!("{}/v1/openapi.yaml", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/yaml");
    assert_eq!(resp.text().await.unwrap(), DOCUMENT);
    env.server.shutdown().await;
}
