//! The README documents every setting and every close reason: this keeps it
//! true when a setting or a reason is added.

use packet_service::config::Config;
use packet_service::conn::reason::{CloseReason, ProtocolError, RejectReason};

const README: &str = include_str!("../README.md");

#[test]
fn every_flag_and_variable_is_documented() {
    let usage = Config::usage();
    let mut checked = 0;
    for word in usage.split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ',') {
        let flag = word.starts_with("--") && word.len() > 2;
        let var = word.len() > 3 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if flag || var {
            assert!(README.contains(word), "README.md does not mention {word}");
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} names found in --help");
}

#[test]
fn every_reason_is_documented() {
    for label in CloseReason::LABELS
        .iter()
        .chain(ProtocolError::LABELS)
        .chain(RejectReason::LABELS)
    {
        assert!(
            README.contains(&format!("`{label}`")),
            "README.md does not explain `{label}`"
        );
    }
}
