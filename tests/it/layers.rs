//! The rooms of `common` depend one way: the domain is at the bottom and imports no outer layer.

#[test]
fn the_domain_imports_no_outer_layer() {
    let domain = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../common/src/domain");
    let outer = [
        "ports", "service", "adapters", "http", "graphql", "deps", "local", "lambda",
    ];
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&domain).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for layer in outer {
            if text.contains(&format!("crate::{layer}::"))
                || text.contains(&format!("crate::{layer};"))
            {
                found.push(format!("{} uses crate::{layer}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
