//! Embeds the platform's dashboards (`fixtures/dashboards/`, plain JSON and ConfigMaps): writes
//! `$OUT_DIR/dashboards.rs`, a slice of (path relative to that directory, contents) pairs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest.join("../../fixtures/dashboards");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for f in &files {
        println!("cargo::rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&root).expect("below root").to_string_lossy();
        let abs = f.canonicalize().expect("canonical path");
        writeln!(out, "    ({rel:?}, include_str!({:?})),", abs.display()).expect("write");
    }
    out.push(']');
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("out dir")).join("dashboards.rs");
    std::fs::write(dest, out).expect("write dashboards.rs");
}

/// Every `.json`, `.yaml` and `.yml` file below `dir`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read fixtures/dashboards") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            // Directories are watched above; each file too, so edits rebuild.
            out.push(p);
        }
    }
}
