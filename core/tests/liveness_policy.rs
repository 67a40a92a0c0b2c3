//! The committed policy file documents the defaults: it must parse and equal `LivenessPolicy::default()`.

use facepay_core::liveness::LivenessPolicy;

#[test]
fn committed_policy_file_equals_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/liveness-policy.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let parsed = LivenessPolicy::from_toml(&text).expect("docs/liveness-policy.toml parses");
    assert_eq!(parsed, LivenessPolicy::default());
    // And it sets every field explicitly (no section left to the defaults).
    let table: toml::Table = toml::from_str(&text).unwrap();
    let defaults: toml::Table =
        toml::from_str(&LivenessPolicy::default().to_toml().unwrap()).unwrap();
    let keys = |t: &toml::Table| -> Vec<String> {
        t.iter()
            .flat_map(|(section, v)| {
                v.as_table()
                    .into_iter()
                    .flat_map(move |inner| inner.keys().map(move |k| format!("{section}.{k}")))
            })
            .collect()
    };
    assert_eq!(keys(&table), keys(&defaults));
}
