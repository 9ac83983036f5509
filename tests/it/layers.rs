//! The modules of `common` depend one way (docs/architecture.md §Layout).
//!
//! A module is a file of `common/src`, named by its path: `deps.rs` is `deps`, `service/auth.rs`
//! is `service::auth`, `domain/mod.rs` is `domain`. A room is a module's first segment
//! (`domain`, `ports`, `service`, `adapters`, `http`, `graphql`, and each root file such as
//! `error` or `config`). A module imports another when it names it: a `crate::…` path (in a
//! `use`, a `use crate::{…}` group or an expression) or a `super::…` path, resolved to the
//! longest prefix that is a module (`crate::time::serde_millis::serialize` is `time`).
//!
//! The rules:
//! - the rooms form a DAG: no chain of imports leads from a room back to itself;
//! - no two modules import each other, except a module and a submodule of its own (a child
//!   using its parent's items through `super::` is how Rust shares private items);
//! - the domain imports only the domain, `error` and `time`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name → the modules it imports (never itself).
type Graph = BTreeMap<String, BTreeSet<String>>;

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../common/src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// `service/auth.rs` → `service::auth`, `domain/mod.rs` → `domain`; `lib.rs` is the root, "".
fn module_name(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut segments: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
        segments.pop();
    }
    segments.join("::")
}

/// Every path a use tree names: `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`.
fn expand(prefix: &str, tree: &str, paths: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree
            .split(" as ")
            .next()
            .unwrap()
            .trim()
            .trim_end_matches("::");
        let path = path.strip_suffix("::self").unwrap_or(path);
        if path == "self" || path.is_empty() {
            paths.push(prefix.trim_end_matches("::").to_owned());
        } else {
            paths.push(format!("{prefix}{path}"));
        }
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&head, &inner[start..i], paths);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand(&head, &inner[start..], paths);
    }
}

/// The path that starts at `at` in `text`: identifiers, `::` and one brace group.
fn path_at(text: &str, at: usize) -> &str {
    let bytes = text.as_bytes();
    let (mut end, mut depth) = (at, 0);
    while end < bytes.len() {
        match bytes[end] {
            b'{' => depth += 1,
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    end += 1;
                    break;
                }
            }
            b'}' => break,
            b if depth > 0 && b != b';' => {}
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b':' => {}
            _ => break,
        }
        end += 1;
    }
    &text[at..end]
}

/// The longest prefix of `path` (segments after `crate`) that is a module.
fn resolve(modules: &BTreeSet<String>, segments: &[&str]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|name| modules.contains(name))
}

/// The modules one file imports. Comment lines are skipped; `super::` is resolved from the
/// file's module, less the inline modules (`mod tests {`) the line is in.
fn imports_of(name: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let own: Vec<&str> = if name.is_empty() {
        vec![]
    } else {
        name.split("::").collect()
    };
    let mut found = BTreeSet::new();
    let mut inline: Vec<usize> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if inline.last() == Some(&indent) && trimmed.starts_with('}') {
            inline.pop();
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let is_inline_mod = trimmed.ends_with('{')
            && (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod "));
        if is_inline_mod {
            inline.push(indent);
        }
        if !line.contains("crate::") && !line.contains("super::") {
            continue;
        }
        // A use tree may span lines: read on from here.
        let rest = lines[index..(index + 40).min(lines.len())].join("\n");
        for (keyword, is_super) in [("crate::", false), ("super::", true)] {
            let mut from = 0;
            while let Some(offset) = line[from..].find(keyword) {
                let at = from + offset;
                from = at + keyword.len();
                let before = line[..at].chars().last();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut paths = Vec::new();
                expand("", path_at(&rest, at), &mut paths);
                for path in paths {
                    let mut segments: Vec<&str> = path.split("::").collect();
                    let mut base: Vec<&str> = own.clone();
                    if is_super {
                        let ups = segments.iter().take_while(|s| **s == "super").count();
                        segments.drain(..ups);
                        // Inside an inline module, the first `super`s stay in this file.
                        let ups = ups.saturating_sub(inline.len());
                        if ups == 0 || ups > base.len() {
                            continue;
                        }
                        base.truncate(base.len() - ups);
                    } else {
                        segments.remove(0);
                        base.clear();
                    }
                    let full: Vec<&str> = base.into_iter().chain(segments).collect();
                    if let Some(target) = resolve(modules, &full) {
                        if target != name {
                            found.insert(target);
                        }
                    }
                }
            }
        }
    }
    found
}

fn graph() -> Graph {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let named: Vec<(String, String)> = files
        .iter()
        .map(|file| {
            (
                module_name(&root, file),
                std::fs::read_to_string(file).unwrap(),
            )
        })
        .collect();
    let modules: BTreeSet<String> = named
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| !name.is_empty())
        .collect();
    named
        .iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, text)| (name.clone(), imports_of(name, text, &modules)))
        .collect()
}

fn room(module: &str) -> &str {
    module.split("::").next().unwrap()
}

fn is_family(a: &str, b: &str) -> bool {
    a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

#[test]
fn the_parser_reads_imports_as_this_code_base_writes_them() {
    let graph = graph();
    let imports = |module: &str| graph.get(module).unwrap_or_else(|| panic!("no {module}"));
    // `use crate::service::{deliveries, webhooks, worker};`
    assert!(imports("graphql::mutation").contains("service::worker"));
    // `use super::lookup::load as load_webhook;`
    assert!(imports("service::worker").contains("service::lookup"));
    // `use super::signature::{…}` from a sibling; `use super::*` in `mod tests` is the file.
    assert!(imports("domain::webhook").contains("domain::signature"));
    assert!(!imports("domain::webhook").contains("domain"));
    // `#[serde(serialize_with = "crate::time::serde_millis::serialize")]`
    assert!(imports("domain::auth").contains("time"));
}

#[test]
fn the_domain_imports_only_the_domain_error_and_time() {
    let found: Vec<String> = graph()
        .iter()
        .filter(|(module, _)| room(module) == "domain")
        .flat_map(|(module, imports)| {
            imports
                .iter()
                .filter(|import| !matches!(room(import), "domain" | "error" | "time"))
                .map(move |import| format!("{module} imports {import}"))
        })
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

/// Pairs that still import each other, each to be broken: the list may only shrink.
const KNOWN_PAIRS: &[&str] = &[];

#[test]
fn no_two_modules_import_each_other() {
    let graph = graph();
    let mut found = Vec::new();
    for (module, imports) in &graph {
        for import in imports {
            let back = graph
                .get(import)
                .is_some_and(|theirs| theirs.contains(module));
            if back && module < import && !is_family(module, import) {
                found.push(format!("{module} <-> {import}"));
            }
        }
    }
    let gone: Vec<&&str> = KNOWN_PAIRS
        .iter()
        .filter(|pair| !found.iter().any(|f| f == *pair))
        .collect();
    found.retain(|pair| !KNOWN_PAIRS.contains(&pair.as_str()));
    assert!(found.is_empty(), "modules importing each other: {found:#?}");
    assert!(
        gone.is_empty(),
        "no longer import each other, strike from KNOWN_PAIRS: {gone:#?}"
    );
}

#[test]
fn the_rooms_form_a_dag() {
    let mut rooms: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let graph = graph();
    for (module, imports) in &graph {
        let edges = rooms.entry(room(module)).or_default();
        edges.extend(
            imports
                .iter()
                .map(|import| room(import))
                .filter(|r| *r != room(module)),
        );
    }
    // A cycle through each room that has one, found by walking the imports from it.
    let mut cycles = BTreeSet::new();
    for start in rooms.keys() {
        let mut paths: Vec<Vec<&str>> = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = paths.pop() {
            for next in &rooms[path.last().unwrap()] {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(next);
                    // Written from its smallest room, so that each cycle is listed once.
                    let least = (0..cycle.len() - 1).min_by_key(|i| cycle[*i]).unwrap();
                    let mut turned: Vec<&str> = cycle[least..cycle.len() - 1].to_vec();
                    turned.extend(&cycle[..=least]);
                    cycles.insert(turned.join(" -> "));
                } else if rooms.contains_key(next) && seen.insert(*next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    paths.push(longer);
                }
            }
        }
    }
    assert!(cycles.is_empty(), "rooms importing each other: {cycles:#?}");
}
