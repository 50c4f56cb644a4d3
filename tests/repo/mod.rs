//! The repository's files, for the tests that check documents against them
//! (`tests/doc_refs.rs`, `tests/layout.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Repository-relative paths of the files, sorted: every file git tracks or
/// would track (untracked files that are not ignored count too). Without
/// git, every file below the root except `.git`, build and fuzz output.
pub fn repository_files(root: &Path) -> Vec<String> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let mut files: Vec<String> = match listed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|p| !p.is_empty() && root.join(p).is_file())
            .map(str::to_owned)
            .collect(),
        _ => {
            let mut found = Vec::new();
            walk(root, root, &mut found);
            found
        }
    };
    files.sort();
    files.dedup();
    files
}

/// The fallback without git: everything but `.git`, build and fuzz output.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    const SKIPPED: &[&str] = &[
        ".git",
        "fuzz/corpus",
        "fuzz/artifacts",
        "fuzz/logs",
        "fuzz/coverage",
    ];
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if SKIPPED.contains(&rel.as_str()) || entry.file_name() == "target" {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(rel);
        }
    }
}
