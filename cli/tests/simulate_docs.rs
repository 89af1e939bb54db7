//! The pictures of README.md and docs/tuning.md are what their command
//! lines make: every `floodgate simulate ... --svg docs/img/X.svg` line in a
//! code block is run again (the chart into a temp file) and must give the
//! committed docs/img/X.svg byte for byte. And the model grammar quoted in
//! docs/tuning.md is the one `--help` prints.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Splits a shell line into words: blanks separate, '...' quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(w) = word.take() {
                    out.push(w);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "unbalanced quote in {line}");
    out.extend(word);
    out
}

/// The picture lines of a Markdown file: (args after `floodgate`, the SVG).
fn picture_lines(doc: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code && line.starts_with("floodgate simulate ") && line.contains("--svg docs/img/") {
            let w = words(line);
            let at = w.iter().position(|a| a == "--svg").unwrap();
            out.push((w[1..].to_vec(), w[at + 1].clone()));
        }
    }
    out
}

#[test]
fn every_picture_is_what_its_line_makes() {
    let dir = std::env::temp_dir().join(format!("fg-simulate-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seen = Vec::new();
    for (doc, at_least) in [("README.md", 1), ("docs/tuning.md", 3)] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        let lines = picture_lines(&text);
        assert!(
            lines.len() >= at_least,
            "{doc}: {} picture lines",
            lines.len()
        );
        for (mut args, svg) in lines {
            let name = Path::new(&svg).file_name().unwrap().to_str().unwrap();
            assert!(
                text.contains(&format!("]({svg})")) || text.contains(&format!("](img/{name})")),
                "{doc} shows {svg}"
            );
            let out = dir.join(name);
            let at = args.iter().position(|a| a == "--svg").unwrap();
            args[at + 1] = out.to_str().unwrap().to_owned();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = cli_raw(&args);
            assert_eq!(r.code, 0, "{doc}: {args:?}: {}", r.stderr);
            let made = std::fs::read(&out).unwrap();
            let committed =
                std::fs::read(repo().join(&svg)).unwrap_or_else(|e| panic!("{doc}: {svg}: {e}"));
            assert!(
                made == committed,
                "{doc}: {svg} is not what its line makes; run the line from the repository root to update it"
            );
            roxmltree::Document::parse(std::str::from_utf8(&made).unwrap())
                .unwrap_or_else(|e| panic!("{svg}: {e}"));
            seen.push(svg);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(seen.contains(&"docs/img/red-taildrop-redp-3x.svg".to_owned()));
}

#[test]
fn the_guide_quotes_the_model_grammar_of_help() {
    let guide = std::fs::read_to_string(repo().join("docs/tuning.md")).unwrap();
    let help = cli_raw(&["simulate", "--help"]).stdout;
    let start = guide.find("Traffic models (--model): one or more").unwrap();
    let block = &guide[start..];
    let block = &block[..block.find("```").unwrap()];
    assert!(
        help.contains(block.trim_end()),
        "docs/tuning.md's grammar differs from --help:\n{block}"
    );
}

#[test]
fn words_split_as_a_shell_does() {
    assert_eq!(words("a 'b c' d''"), ["a", "b c", "d"]);
    assert_eq!(words("  x  "), ["x"]);
}
