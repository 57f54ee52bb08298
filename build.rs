//! Embeds the chat page (`web/`) into the binary: for every file, its bytes, a gzip copy
//! made here once (for text formats) and a content hash for its ETag. Writes
//! `$OUT_DIR/web_assets.rs`, a table that `src/api/web.rs` includes; serving is its job.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let web = root.join("web");
    println!("cargo:rerun-if-changed=web");
    let mut files = Vec::new();
    walk(&web, &mut files);
    // Sorted by the served path (as a string), so that web.rs can binary-search it.
    let mut files: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&web).expect("walked under web/");
            (rel.to_string_lossy().replace('\\', "/"), f)
        })
        .collect();
    files.sort();

    let gz_dir = out.join("web_gz");
    std::fs::create_dir_all(&gz_dir).expect("OUT_DIR is writable");
    let mut table = String::from("&[\n");
    for (i, (rel, file)) in files.iter().enumerate() {
        let bytes = std::fs::read(file).expect("a readable file under web/");
        let content_type = content_type(rel)
            .unwrap_or_else(|| panic!("web/{rel}: no content type known for this extension"));
        let gzip = if compressible(content_type) {
            let mut enc = GzEncoder::new(Vec::new(), Compression::best());
            enc.write_all(&bytes).expect("gzip into memory");
            let gz = enc.finish().expect("gzip into memory");
            let path = gz_dir.join(format!("{i}.gz"));
            std::fs::write(&path, gz).expect("OUT_DIR is writable");
            format!("Some(include_bytes!({:?}))", path.to_string_lossy())
        } else {
            "None".to_string()
        };
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, content_type: {content_type:?}, etag: \"\\\"{:016x}\\\"\", body: include_bytes!({:?}), gzip: {gzip} }},",
            fnv1a(&bytes),
            file.to_string_lossy(),
        )
        .expect("writing to a String");
    }
    table.push(']');
    std::fs::write(out.join("web_assets.rs"), table).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e);
    let name = path.rsplit('/').next().unwrap_or(path);
    Some(match ext {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ if name.starts_with("LICENSE") || name == "VERSIONS" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// Formats that are already compressed (fonts, images) gain nothing from gzip.
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type == "image/svg+xml"
        || content_type == "application/json"
}

/// FNV-1a, 64 bits: the ETag only has to change when the bytes do.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
