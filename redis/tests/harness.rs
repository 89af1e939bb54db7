//! The harness itself, against a plain redis-server (no module needed).

mod common;

#[test]
fn harness_starts_restarts_and_cleans_up_a_plain_server() {
    common::harness_self_test();
}
