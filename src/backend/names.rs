//! Which names the embedded backend accepts: the character set of account
//! and character names and the words a player may not take
//! (docs/protocol.md §9 D16).
//!
//! - Character set: ASCII letters, digits, `_` and `-`; 1..=20 bytes. The
//!   `osirose` and `osirose-2021` dialects carry names as bytes decoded as
//!   UTF-8, and these characters are the same bytes in every code page a
//!   client may use, so a name is stored exactly as the client sent it.
//!   Whitespace, control characters, invisible characters (U+200B, U+00A0,
//!   …), non-ASCII look-alikes (Cyrillic `е`, …) and bytes that are not UTF-8
//!   (decoded as U+FFFD) are all outside the set.
//! - Reserved: a name a player chooses (a character, an auto-created
//!   account) whose [`skeleton`] starts with one of [`RESERVED`] is refused,
//!   so that nobody can pass for a server notice or a game master
//!   (`5erv3r`, `SERVER_msg`, `GM-Bob`, `Gmbob`). Accounts an operator
//!   creates (accounts file, `account add`) may use them.

/// Longest name, in bytes (both account and character names).
pub const MAX_NAME_LEN: usize = 20;

/// Skeleton prefixes a player may not take.
pub const RESERVED: [&str; 3] = ["server", "system", "gm"];

/// What is wrong with a name, if anything.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NameCheck {
    /// Within the character set and not reserved.
    Ok,
    /// Empty or longer than [`MAX_NAME_LEN`] bytes.
    Length,
    /// A character outside the set.
    Character,
    /// Its skeleton starts with a [`RESERVED`] word.
    Reserved,
}

/// Whether `c` is in the name character set.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Checks the length and character set only (names an operator chooses).
pub fn check_charset(name: &str) -> NameCheck {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        NameCheck::Length
    } else if !name.chars().all(allowed) {
        NameCheck::Character
    } else {
        NameCheck::Ok
    }
}

/// Checks a name a player chooses: the character set and [`RESERVED`].
pub fn check_player_name(name: &str) -> NameCheck {
    match check_charset(name) {
        NameCheck::Ok if is_reserved(name) => NameCheck::Reserved,
        other => other,
    }
}

/// The form two names that look alike share: lowercase, separators (`_`,
/// `-`) dropped, and the look-alikes `0`→`o`, `1`/`i`/`|`→`l`, `3`→`e`,
/// `4`→`a`, `5`→`s`, `6`/`9`→`g`, `rn`→`m`, `vv`→`w` folded.
pub fn skeleton(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match c.to_ascii_lowercase() {
            '_' | '-' => continue,
            '0' => 'o',
            '1' | 'i' | '|' => 'l',
            '3' => 'e',
            '4' => 'a',
            '5' => 's',
            '6' | '9' => 'g',
            c => c,
        };
        let folded = match (out.chars().last(), c) {
            (Some('r'), 'n') => Some('m'),
            (Some('v'), 'v') => Some('w'),
            _ => None,
        };
        match folded {
            Some(f) => {
                out.pop();
                out.push(f);
            }
            None => out.push(c),
        }
    }
    out
}

/// Whether the skeleton of `name` starts with a reserved word.
fn is_reserved(name: &str) -> bool {
    let skeleton = skeleton(name);
    RESERVED.iter().any(|word| skeleton.starts_with(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_character_set() {
        for ok in ["Raven", "a", "x_1-Y", &"n".repeat(20)] {
            assert_eq!(check_player_name(ok), NameCheck::Ok, "{ok:?}");
        }
        assert_eq!(check_charset(""), NameCheck::Length);
        assert_eq!(check_charset(&"n".repeat(21)), NameCheck::Length);
        for bad in [
            "server msg",
            "tab\tname",
            "nul\0",
            "Ser\u{200B}ver",
            "Ser\u{00A0}ver",
            "\u{0421}erver",
            "Nam\u{FFFD}",
            "a.b",
            "[GM]Bob",
        ] {
            assert_eq!(check_charset(bad), NameCheck::Character, "{bad:?}");
        }
    }

    #[test]
    fn reserved_words_and_their_look_alikes() {
        for bad in [
            "server",
            "SERVER_msg",
            "5erv3r",
            "Servermsg",
            "S-e-r-v-e-r",
            "sy5tem",
            "GM",
            "gm_Bob",
            "Gmbob",
            "9M",
            "GRN",
        ] {
            assert_eq!(check_player_name(bad), NameCheck::Reserved, "{bad:?}");
            assert_eq!(check_charset(bad), NameCheck::Ok, "operators may: {bad:?}");
        }
        for ok in ["Observer", "Sever", "Agm", "Mallory"] {
            assert_eq!(check_player_name(ok), NameCheck::Ok, "{ok:?}");
        }
        assert_eq!(skeleton("5erv3r_M5G"), "servermsg");
        assert_eq!(skeleton("rnvv"), "mw");
    }
}
