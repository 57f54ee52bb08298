//! The module layout stays a one-way street: no module of `src/` or `models/src/`
//! imports one that imports it back, directly or through others
//! (scripts/module-graph.py, which prints the graph).

use std::process::Command;

fn no_circles(dir: &str, depth: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/module-graph.py"))
        .args(["--depth", depth])
        .arg(format!("{root}/{dir}"))
        .output()
        .expect("python3 runs scripts/module-graph.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{dir} at depth {depth}:\n{text}");
    assert!(text.trim_end().ends_with("no circles"), "{text}");
}

#[test]
fn the_server_crate_has_no_import_circle() {
    no_circles("src", "1");
    no_circles("src", "2");
}

#[test]
fn the_models_crate_has_no_import_circle() {
    no_circles("models/src", "1");
}

#[test]
fn the_check_finds_a_circle() {
    let dir = std::env::temp_dir().join(format!("candor-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::Thing;\n").unwrap();
    std::fs::write(dir.join("b.rs"), "use crate::a::{self, Other};\n").unwrap();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/module-graph.py"
        ))
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("circle: a -> b -> a"));
}
