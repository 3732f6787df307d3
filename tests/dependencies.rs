//! One gRPC and one protobuf stack: two versions of tonic or prost in the lockfile would mean two
//! incompatible sets of generated types and codecs in one binary.

#[test]
fn one_tonic_and_one_prost_in_the_lockfile() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock");
    for name in [
        "tonic",
        "prost",
        "prost-types",
        "http",
        "hyper",
        "axum",
        "h2",
        "tower",
    ] {
        let versions: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.lines().any(|l| l.trim() == format!("name = \"{name}\"")))
            .filter_map(|p| p.lines().find_map(|l| l.trim().strip_prefix("version = ")))
            .collect();
        assert_eq!(
            versions.len(),
            1,
            "{name} appears in {} versions: {versions:?}",
            versions.len()
        );
    }
}
