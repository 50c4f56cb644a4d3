//! The layout is written down where a newcomer looks for it, and kept true:
//! docs/architecture.md §12 names every file of the repository with its job,
//! the README's "Layout" section names every file under `src/`, and every
//! repository path a document or a comment names in backticks exists.
//! Adding, moving or removing a file without updating them fails here (a
//! stale pointer in a doc is a bug: docs/architecture.md §13.15).
//!
//! # The rules
//!
//! **Files.** Every file git tracks, or would track (untracked files that are
//! not ignored count too); without git, every file below the repository root
//! except `.git`, build output and the fuzz output directories.
//!
//! **Named.** A file is named when its path from the repository root appears
//! in backticks (`` `src/reactor/input.rs` ``) in the section. The files of a
//! data directory (the fuzz seeds, the benchmark results) may instead be
//! named by their directory with a final slash (`` `fuzz/seeds/packets/` ``).
//!
//! **Paths.** A backticked word that starts with one of the repository's
//! top-level directories and a slash (`` `src/…` ``, `` `tests/…` ``, …) is a
//! path. It must name an existing file or directory, from the repository
//! root or from a directory above the file that names it (a tool's README or
//! source may name paths inside its own crate). Words with `*`, `<`, `>`, `{`,
//! `}`, `…` or spaces are patterns, not paths, and are skipped.

mod repo;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use repo::{repository_files, root};

/// The top-level directories whose paths are checked when a text names them.
const ROOTS: &[&str] = &[
    "src", "tests", "tools", "proto", "fuzz", "mk", "deploy", ".ci", "bench", "docs",
];

/// Directories whose files may be named by the directory alone.
const DATA_DIRS: &[&str] = &["fuzz/seeds/", "bench/results/"];

/// Characters that make a backticked word a pattern rather than a path.
const PATTERN: &[char] = &['*', '<', '>', '{', '}', ' ', '…'];

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---- sections and names -----------------------------------------------------

/// The text from the heading that starts with `start` (`## 12.`) to the next
/// heading of the same or a higher level. Headings in fenced code blocks do
/// not count.
fn section<'a>(text: &'a str, start: &str) -> &'a str {
    let level = start.chars().take_while(|&c| c == '#').count();
    let mut begin = None;
    let mut offset = 0;
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        let heading = !fenced && hashes > 0 && line[hashes..].starts_with(' ');
        match begin {
            None if heading && line.starts_with(start) => begin = Some(offset),
            Some(b) if heading && hashes <= level => return &text[b..offset],
            _ => {}
        }
        offset += line.len();
    }
    match begin {
        Some(b) => &text[b..],
        None => panic!("no heading starting {start:?}"),
    }
}

/// Every word in backticks.
fn backticked(text: &str) -> BTreeSet<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Whether `file` is named among `names`: by its path, or by the directory
/// of a data directory that holds it.
fn is_named(file: &str, names: &BTreeSet<&str>) -> bool {
    if names.contains(file) {
        return true;
    }
    let mut dir = file;
    while let Some(end) = dir.rfind('/') {
        dir = &dir[..end];
        let slashed = format!("{dir}/");
        if names.contains(slashed.as_str()) && DATA_DIRS.iter().any(|d| slashed.starts_with(d)) {
            return true;
        }
    }
    false
}

/// The files among `files` that `section` does not name.
fn unnamed<'f>(section: &str, files: impl Iterator<Item = &'f String>) -> Vec<&'f str> {
    let names = backticked(section);
    files
        .map(String::as_str)
        .filter(|f| !is_named(f, &names))
        .collect()
}

#[test]
fn architecture_names_every_file() {
    let files = repository_files(&root());
    let text = read("docs/architecture.md");
    let layout = section(&text, "## 12.");
    let missing = unnamed(layout, files.iter());
    assert!(
        missing.is_empty(),
        "docs/architecture.md §12 does not name (as `path`, from the repository root):\n{}",
        missing.join("\n")
    );
    assert!(files.len() > 150, "only {} files found", files.len());
}

#[test]
fn readme_layout_names_every_file_under_src() {
    let files = repository_files(&root());
    let sources: Vec<&String> = files.iter().filter(|f| f.starts_with("src/")).collect();
    let text = read("README.md");
    let layout = section(&text, "## Layout");
    let missing = unnamed(layout, sources.iter().copied());
    assert!(
        missing.is_empty(),
        "README.md \"## Layout\" does not name (as `path`):\n{}",
        missing.join("\n")
    );
    assert!(
        sources.len() > 50,
        "only {} files under src/",
        sources.len()
    );
    assert!(
        text.contains("- [Layout](#layout)"),
        "README.md's contents do not link the Layout section"
    );
}

// ---- paths --------------------------------------------------------------------

/// Whether a backticked word is a repository path to check.
fn is_path(word: &str) -> bool {
    !word.contains(PATTERN)
        && ROOTS.iter().any(|r| {
            word.strip_prefix(r)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Whether `path`, named in the file `from`, exists from the root or from a
/// directory above `from`.
fn resolves(root: &Path, from: &str, path: &str) -> bool {
    let mut dir = Path::new(from).parent();
    while let Some(d) = dir {
        if root.join(d).join(path).exists() {
            return true;
        }
        dir = d.parent();
    }
    root.join(path).exists()
}

#[test]
fn every_named_path_exists() {
    let root = root();
    let mut errors = Vec::new();
    let mut checked = 0;
    for file in repository_files(&root) {
        let Ok(text) = fs::read_to_string(root.join(&file)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for word in backticked(line).into_iter().filter(|w| is_path(w)) {
                checked += 1;
                if !resolves(&root, &file, word) {
                    errors.push(format!("{file}:{}: `{word}` does not exist", n + 1));
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} paths name no file (see the rules in tests/layout.rs):\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(checked > 200, "only {checked} paths found");
}

// ---- the checker itself -------------------------------------------------------------

#[test]
fn sections_end_at_the_next_heading_of_their_level() {
    let text = "# T\n## 11. A\na\n## 12. Layout\nx\n### Sub\ny\n```\n## not a heading\n```\nz\n## 13. Next\nw\n";
    let s = section(text, "## 12.");
    assert!(s.starts_with("## 12. Layout"));
    assert!(s.contains("\ny\n") && s.contains("\nz\n"));
    assert!(!s.contains("\nw\n"));
    assert_eq!(section(text, "## 13."), "## 13. Next\nw\n");
}

fn ticks(s: &str) -> String {
    s.replace('^', "`")
}

#[test]
fn a_file_left_out_is_found() {
    let files: Vec<String> = [
        "src/a.rs",
        "src/b.rs",
        "fuzz/seeds/packets/one",
        "src/data/x",
    ]
    .map(str::to_owned)
    .to_vec();
    // ^ stands for a backtick, so that these made-up paths are not checked.
    let layout = ticks(
        "- ^src/a.rs^ — a.\n- ^fuzz/seeds/packets/^ — seeds.\n- ^src/data/^ — no data directory.\n",
    );
    assert_eq!(
        unnamed(&layout, files.iter()),
        vec!["src/b.rs", "src/data/x"]
    );
    // A path written relative to its section's directory is not a name.
    assert_eq!(
        unnamed(&ticks("- ^a.rs^"), files[..1].iter()),
        vec!["src/a.rs"]
    );
}

#[test]
fn paths_and_patterns() {
    assert!(is_path("src/reactor/mod.rs"));
    assert!(is_path(".ci/run"));
    assert!(is_path("docs/"));
    assert!(!is_path("src"));
    assert!(!is_path("srcx/a.rs"));
    assert!(!is_path("src/protocol/packets/*.rs"));
    assert!(!is_path("bench/results/<date>-<host>.json"));
    assert!(!is_path("Server::build"));
    let root = root();
    assert!(resolves(&root, "README.md", "src/lib.rs"));
    assert!(resolves(
        &root,
        "tools/replay/src/wireshark.rs",
        "src/wireshark/dissector.lua"
    ));
    assert!(!resolves(&root, "README.md", "src/nothing.rs"));
}
