//! The README's Rust example is `examples/quickstart.rs`, verbatim from its
//! first `use` on, so the code readers copy is code that CI compiles and
//! runs (`cargo run -p floodgate --example quickstart`).

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../examples/quickstart.rs");

#[test]
fn the_readme_shows_the_quickstart_example_verbatim() {
    let code = &EXAMPLE[EXAMPLE.find("use ").expect("the example has a use line")..];
    let block = format!("```rust\n{code}```\n");
    assert!(
        README.contains(&block),
        "README.md must contain examples/quickstart.rs from its first `use` on, in a ```rust block:\n{block}"
    );
    assert!(
        README.contains("floodgate = \"0.1\""),
        "the Cargo.toml line"
    );
}
