//! The README and the systemd environment file document every setting, and
//! the README every close reason and login result: this keeps them true
//! when a setting or a reason is added. The settings come from the table itself
//! ([`packet_service::config::SETTINGS`]), not from `--help`.

use packet_service::config::{Form, Reload, SETTINGS};
use packet_service::conn::reason::{
    ChatRefusal, CloseReason, LoginVerdict, ProtocolError, RejectReason,
};

const README: &str = include_str!("../README.md");
const ENV_FILE: &str = include_str!("../deploy/packet-service.env");

#[test]
fn every_flag_and_variable_is_documented() {
    assert!(SETTINGS.len() > 30, "only {} settings", SETTINGS.len());
    for row in SETTINGS {
        let flag = match row.hint {
            "" => format!("`--{}`", row.long),
            hint => format!("`--{} {hint}`", row.long),
        };
        let start = format!("| {flag} | `{}` |", row.env);
        let line = README
            .lines()
            .find(|line| line.starts_with(&start))
            .unwrap_or_else(|| panic!("README.md has no row starting {start}"));
        let mark = match row.reload {
            Reload::Live => "| live |",
            Reload::Restart => "| restart |",
        };
        assert!(
            line.contains(mark),
            "README.md does not mark --{} {mark}: {line}",
            row.long
        );
        // A switch's default is the variable's boolean, written in words.
        if let (Some(default), Form::Value | Form::Repeated) = (row.default, row.form) {
            assert!(
                line.contains(&format!("| `{default}` |")),
                "README.md gives --{} another default than {default}: {line}",
                row.long
            );
        }
    }
}

#[test]
fn every_variable_is_in_the_environment_file() {
    for row in SETTINGS {
        let commented = format!("#{}=", row.env);
        let line = ENV_FILE
            .lines()
            .find(|line| line.starts_with(&commented))
            .unwrap_or_else(|| panic!("deploy/packet-service.env lacks {commented}"));
        if let Some(default) = row.default {
            assert_eq!(
                line,
                format!("{commented}{default}"),
                "deploy/packet-service.env shows another default"
            );
        }
    }
}

#[test]
fn every_reason_is_documented() {
    for label in CloseReason::LABELS
        .iter()
        .chain(ProtocolError::LABELS)
        .chain(RejectReason::LABELS)
        .chain(LoginVerdict::LABELS)
        .chain(ChatRefusal::LABELS)
    {
        assert!(
            README.contains(&format!("`{label}`")),
            "README.md does not explain `{label}`"
        );
    }
}
