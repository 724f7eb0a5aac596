//! The house rules a newcomer relies on, checked on every file git tracks: README.md stays a short
//! entry point (the rest lives in docs/), no source file grows past 600 lines, the console's
//! scripts and styles stay within 120 columns like the Rust, and nothing cites a document that is
//! not in the repository (the project's docs/ and tests are what comments cite).

use std::path::{Path, PathBuf};
use std::process::Command;

const README_MAX_LINES: usize = 200;
const SOURCE_MAX_LINES: usize = 600;
const CONSOLE_MAX_COLUMNS: usize = 120;
const SOURCE_EXTENSIONS: &[&str] = &["rs", "js", "css", "html", "py", "sh"];
/// Where text is read by people: sources, scripts, the template, and the docs themselves.
const TEXT_EXTENSIONS: &[&str] = &["rs", "js", "css", "html", "py", "sh", "yaml", "yml", "toml", "md"];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The files git tracks, with their paths relative to the root.
fn tracked_files() -> Vec<(String, String)> {
    let root = repository_root();
    let out = Command::new("git").arg("ls-files").current_dir(&root).output().expect("git ls-files runs");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .expect("paths are UTF-8")
        .lines()
        .filter_map(|path| Some((path.to_owned(), std::fs::read_to_string(root.join(path)).ok()?)))
        .collect()
}

fn extension(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(_, ext)| ext)
}

#[test]
fn readme_is_at_most_200_lines() {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= README_MAX_LINES, "README.md has {lines} lines; move detail into docs/");
}

#[test]
fn no_source_file_passes_600_lines() {
    let long: Vec<String> = tracked_files()
        .into_iter()
        .filter(|(path, _)| SOURCE_EXTENSIONS.contains(&extension(path)))
        .filter_map(|(path, text)| {
            let lines = text.lines().count();
            (lines > SOURCE_MAX_LINES).then(|| format!("{path}: {lines} lines"))
        })
        .collect();
    assert!(long.is_empty(), "split these into modules:\n{}", long.join("\n"));
}

#[test]
fn console_scripts_and_styles_stay_within_120_columns() {
    let wide: Vec<String> = tracked_files()
        .into_iter()
        .filter(|(path, _)| {
            path.starts_with("functions/api/console/") && ["js", "css", "html"].contains(&extension(path))
        })
        .flat_map(|(path, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.chars().count() > CONSOLE_MAX_COLUMNS)
                .map(|(n, line)| format!("{path}:{}: {} columns", n + 1, line.chars().count()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(wide.is_empty(), "wrap these lines:\n{}", wide.join("\n"));
}

/// A citation of a document outside the repository: the design contract and the issue tracker
/// the project was built from, which a reader of the repository does not have.
fn cites_an_outside_document(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let issue_number = lower
        .match_indices("issue ")
        .any(|(i, m)| lower[i + m.len()..].chars().next().is_some_and(|c| c.is_ascii_digit()));
    line.contains("DESIGN") || line.contains("seeds/") || line.contains("../shared") || issue_number
}

#[test]
fn nothing_cites_a_document_outside_the_repository() {
    let citing: Vec<String> = tracked_files()
        .into_iter()
        .filter(|(path, _)| TEXT_EXTENSIONS.contains(&extension(path)) && path != "tests/tests/house_rules.rs")
        .flat_map(|(path, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| cites_an_outside_document(line))
                .map(|(n, line)| format!("{path}:{}: {}", n + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(citing.is_empty(), "cite docs/ or a test by name instead:\n{}", citing.join("\n"));
}

#[test]
fn the_citation_check_recognises_what_it_forbids() {
    assert!(cites_an_outside_document("//! Signing deliveries (DESIGN §5): the headers"));
    assert!(cites_an_outside_document("// Issue 3, \"done when\": publish"));
    assert!(cites_an_outside_document("# see ../shared/seeds/002.md"));
    assert!(!cites_an_outside_document("// see docs/delivery.md and retries::gone_410"));
    assert!(!cites_an_outside_document("// an issue with the receiver"));
}
