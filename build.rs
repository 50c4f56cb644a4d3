//! Compiles the backend contracts in `proto/` with protox (a pure-Rust
//! protobuf compiler), so no system `protoc` is needed, and records the git
//! revision of the source for the `build_info` metric.

use std::path::Path;
use std::process::Command;

/// Variable that names the revision when the source is not a git checkout
/// (a container build context has no `.git`).
const REVISION_VAR: &str = "PACKET_SERVICE_REVISION";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Neither protox nor tonic-prost-build emits this.
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "proto/auth.proto",
        "proto/character.proto",
        "proto/world.proto",
        "proto/admin.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    println!("cargo:rustc-env=BUILD_REVISION={}", revision());
    Ok(())
}

/// `PACKET_SERVICE_REVISION` if set, else `git rev-parse --short HEAD`, else
/// `unknown`; never fails the build.
fn revision() -> String {
    println!("cargo:rerun-if-env-changed={REVISION_VAR}");
    if let Ok(given) = std::env::var(REVISION_VAR) {
        if label_safe(&given) {
            return given;
        }
        println!("cargo:warning={REVISION_VAR} {given:?} is not a revision; using `unknown`");
        return "unknown".to_owned();
    }
    // Rebuild when HEAD moves: HEAD itself (a branch switch or a detached
    // checkout) and the branch it names (a commit). Only existing files are
    // named: cargo reruns a script whose listed file is missing every time.
    for file in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", file]));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &branch]));
    }
    git(&["rev-parse", "--short", "HEAD"])
        .filter(|r| label_safe(r))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A short revision or tag: 1..=40 characters of `[0-9A-Za-z._-]`.
fn label_safe(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The trimmed output of a successful `git` command run in the package.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// Reruns the script when `path` (relative to the package) changes.
fn watch(path: Option<String>) {
    let Some(path) = path else { return };
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if full.exists() {
        println!("cargo:rerun-if-changed={}", full.display());
    }
}
