//! The speed-ups the local stack loads into moto (`src/moto_patches.py`) must not change what moto
//! answers: `moto_patches_check.py` compares the patched index queries with a scan after random
//! writes, base-table queries with sort-key conditions with moto's own Query, and the directly
//! written answers with moto's own serialiser; and it checks the patches refuse another moto.

use std::path::Path;
use std::process::Command;

#[test]
fn the_moto_patches_answer_as_moto_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(python.is_file(), "{} missing: run infra/scripts/bootstrap-python.sh", python.display());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_patches_check.py"))
        .output()
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "moto_patches_check.py failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for part in
        ["refused another moto", "index queries agreed with a scan", "queries with sort-key conditions answered"]
    {
        assert!(stdout.contains(part), "{stdout}");
    }
}
