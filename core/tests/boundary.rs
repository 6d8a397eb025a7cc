//! Architecture invariant: ferry-core stays platform-free. It depends on no browser crate,
//! no async runtime and no real clock, so one seed replays a whole simulated run.

use std::path::Path;
use std::process::Command;

const FORBIDDEN_CRATES: [&str; 7] = [
    "wasm-bindgen",
    "web-sys",
    "js-sys",
    "tokio",
    "getrandom",
    "rand",
    "chrono",
];
const FORBIDDEN_CALLS: [&str; 4] = ["SystemTime::now", "Instant::now", "thread_rng", "std::net"];

#[test]
fn core_depends_on_no_platform_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "ferry-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"ferry-core"),
        "cargo tree listed the crate itself: {names:?}"
    );
    for bad in FORBIDDEN_CRATES {
        assert!(
            !names.contains(&bad),
            "ferry-core must not depend on `{bad}` (dependency tree: {names:?})"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_reads_no_clock_and_every_module_says_what_it_owns() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "found the core's sources: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source is readable");
        for bad in FORBIDDEN_CALLS {
            assert!(
                !text.contains(bad),
                "{} uses `{bad}`: time and randomness come in through the ports",
                file.display()
            );
        }
        assert!(
            text.trim_start().starts_with("//!"),
            "{} has no `//!` module doc",
            file.display()
        );
    }
}
