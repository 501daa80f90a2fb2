//! The committed SDL (`graphql/schema.graphql`) must match the schema the code builds, so that
//! clients and reviewers see every change to the API in a diff.
//! Regenerate with `UPDATE_SCHEMA=1 cargo test -p homeward-graphql --test schema`.

#[test]
fn committed_sdl_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let current = homeward_graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &current).expect("write schema.graphql");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == current,
        "graphql/schema.graphql is stale: run `UPDATE_SCHEMA=1 cargo test -p homeward-graphql \
         --test schema` and commit the result"
    );
}
