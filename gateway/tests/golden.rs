//! The golden SDL: the schema composed from the seven contracts compiled into the gateway, checked
//! in at `gateway/schema.graphql`. A drift rewrites the file and fails, so the change to the
//! public GraphQL API is reviewed like code (`git diff gateway/schema.graphql`); `make schema`
//! regenerates it on purpose.

#[test]
fn the_composed_schema_matches_the_golden_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = patto_gateway::embedded_sdl().expect("the contracts compose");
    assert_eq!(
        sdl,
        patto_gateway::embedded_sdl().unwrap(),
        "composition is deterministic"
    );
    let golden = std::fs::read_to_string(path).unwrap_or_default();
    if golden != sdl {
        std::fs::write(path, &sdl).expect("rewrite the golden file");
        panic!(
            "the composed schema changed: gateway/schema.graphql was rewritten; review `git diff gateway/schema.graphql` and commit it"
        );
    }
}
