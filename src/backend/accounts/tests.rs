//! Unit tests of the account table: password digests, ids and names,
//! logins of both digest kinds, access levels, auto-creation and the
//! accounts file.

use super::*;

const ADMIN_SHA256: &str = "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918";
const ADMIN_MD5: &str = "21232f297a57a5a743894a0e4a801fc3";

fn sha(text: &str) -> PasswordDigest {
    PasswordDigest::parse(DigestKind::Sha256Hex, text.as_bytes()).unwrap()
}

fn md5(text: &str) -> PasswordDigest {
    PasswordDigest::parse(DigestKind::Md5Hex, text.as_bytes()).unwrap()
}

fn plain(p: &str) -> SeedPassword {
    SeedPassword::Plaintext(p.into())
}

#[test]
fn digests_of_plaintext_match_known_vectors() {
    assert_eq!(
        PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "admin"),
        sha(ADMIN_SHA256)
    );
    assert_eq!(
        PasswordDigest::of_plaintext(DigestKind::Md5Hex, "admin"),
        md5(ADMIN_MD5)
    );
}

#[test]
fn digest_parse_checks_length_and_hex() {
    assert!(PasswordDigest::parse(DigestKind::Md5Hex, ADMIN_SHA256.as_bytes()).is_none());
    assert!(PasswordDigest::parse(DigestKind::Sha256Hex, ADMIN_MD5.as_bytes()).is_none());
    let mut bad = ADMIN_MD5.as_bytes().to_vec();
    bad[0] = b'g';
    assert!(PasswordDigest::parse(DigestKind::Md5Hex, &bad).is_none());
    assert!(!format!("{:?}", sha(ADMIN_SHA256)).contains("8c69"));
}

#[test]
fn accounts_get_sequential_ids_and_case_insensitive_names() {
    let mut store = AccountStore::new();
    assert_eq!(store.add("Admin", &plain("admin"), 1), Ok(1));
    assert_eq!(store.add("bob", &plain("pw"), 3), Ok(2));
    assert_eq!(
        store.add("ADMIN", &plain("x"), 1),
        Err(AccountError::Duplicate)
    );
    assert_eq!(
        store.add("", &plain("x"), 1),
        Err(AccountError::InvalidName)
    );
    assert_eq!(
        store.add("a".repeat(21).as_str(), &plain("x"), 1),
        Err(AccountError::InvalidName)
    );
    assert_eq!(
        store.add("two words", &plain("x"), 1),
        Err(AccountError::InvalidName)
    );
    assert!(store.add(&"a".repeat(20), &plain("x"), 1).is_ok());
    let admin = store.get("aDmIn").unwrap();
    assert_eq!((admin.user_id, admin.username.as_str()), (1, "Admin"));
    assert_eq!(store.get("bob").unwrap().access, 3);
    assert!(store.get("carol").is_none());
}

#[test]
fn accounts_are_found_by_id_until_removed() {
    let mut store = AccountStore::new();
    let alice = store.add("Alice", &plain("pw"), 1).unwrap();
    let bob = store.add("bob", &plain("pw"), 2).unwrap();
    let found = store.by_id(alice).map(|a| (a.username.as_str(), a.access));
    assert_eq!(found, Some(("Alice", 1)));
    let pw = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "pw");
    assert!(store.verify(bob, &pw));
    assert_eq!(store.remove("ALICE"), Some(alice));
    assert!(store.by_id(alice).is_none());
    assert!(
        !store.verify(alice, &pw),
        "a removed account verifies nothing"
    );
    assert_eq!(store.by_id(bob).map(|a| a.user_id), Some(bob));
    assert!(store.by_id(99).is_none());
}

#[test]
fn login_compares_both_kinds_ignoring_hex_case() {
    let mut store = AccountStore::new();
    store.add("admin", &plain("admin"), 1).unwrap();
    let ok = LoginCheck::Ok {
        user_id: 1,
        access: 1,
        created: false,
    };
    assert_eq!(store.login("admin", &sha(ADMIN_SHA256), false), ok);
    assert_eq!(
        store.login("ADMIN", &sha(&ADMIN_SHA256.to_uppercase()), false),
        ok
    );
    assert_eq!(store.login("admin", &md5(ADMIN_MD5), false), ok);
    assert_eq!(
        store.login("admin", &md5(&ADMIN_MD5.to_uppercase()), false),
        ok
    );
    let wrong = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "nope");
    assert_eq!(
        store.login("admin", &wrong, false),
        LoginCheck::InvalidPassword
    );
    let wrong = PasswordDigest::of_plaintext(DigestKind::Md5Hex, "nope");
    assert_eq!(
        store.login("admin", &wrong, false),
        LoginCheck::InvalidPassword
    );
    assert_eq!(
        store.login("nobody", &md5(ADMIN_MD5), false),
        LoginCheck::UnknownAccount
    );
}

#[test]
fn digest_seed_only_accepts_its_kind() {
    let mut store = AccountStore::new();
    store
        .add("m", &SeedPassword::Digest(md5(ADMIN_MD5)), 1)
        .unwrap();
    assert!(matches!(
        store.login("m", &md5(ADMIN_MD5), false),
        LoginCheck::Ok { .. }
    ));
    assert_eq!(
        store.login("m", &sha(ADMIN_SHA256), false),
        LoginCheck::InvalidPassword
    );
}

#[test]
fn access_below_one_has_no_right_to_connect() {
    let mut store = AccountStore::new();
    store.add("banned", &plain("admin"), 0).unwrap();
    assert_eq!(
        store.login("banned", &sha(ADMIN_SHA256), false),
        LoginCheck::NoRightToConnect
    );
    // The password is checked first: a wrong one does not reveal the ban.
    let wrong = PasswordDigest::of_plaintext(DigestKind::Sha256Hex, "x");
    assert_eq!(
        store.login("banned", &wrong, false),
        LoginCheck::InvalidPassword
    );
}

#[test]
fn auto_create_stores_the_digest_sent() {
    let mut store = AccountStore::new();
    assert_eq!(
        store.login("new", &md5(ADMIN_MD5), true),
        LoginCheck::Ok {
            user_id: 1,
            access: 1,
            created: true
        }
    );
    assert_eq!(
        store.login("NEW", &md5(ADMIN_MD5), true),
        LoginCheck::Ok {
            user_id: 1,
            access: 1,
            created: false
        }
    );
    let wrong = PasswordDigest::of_plaintext(DigestKind::Md5Hex, "x");
    assert_eq!(
        store.login("new", &wrong, true),
        LoginCheck::InvalidPassword
    );
    assert_eq!(
        store.login("new", &sha(ADMIN_SHA256), true),
        LoginCheck::InvalidPassword
    );
    assert_eq!(
        store.login("has space", &md5(ADMIN_MD5), true),
        LoginCheck::UnknownAccount
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn parses_accounts_file() {
    let text = format!(
        "# seeds\n\nadmin admin 5\n  bob   hunter2  # comment\nm md5:{}\ns sha256:{}\n",
        ADMIN_MD5.to_uppercase(),
        ADMIN_SHA256
    );
    let seeds = parse_accounts(Path::new("a.txt"), &text).unwrap();
    assert_eq!(seeds.len(), 4);
    assert_eq!(seeds[0].username, "admin");
    assert_eq!(seeds[0].access, 5);
    assert_eq!(seeds[0].line, 3);
    assert_eq!(seeds[1].password, plain("hunter2"));
    assert_eq!(seeds[1].access, DEFAULT_ACCESS);
    assert_eq!(seeds[2].password, SeedPassword::Digest(md5(ADMIN_MD5)));
    assert_eq!(seeds[3].password, SeedPassword::Digest(sha(ADMIN_SHA256)));
    let mut store = AccountStore::new();
    store.add_seeds(Path::new("a.txt"), &seeds).unwrap();
    assert!(matches!(
        store.login("m", &md5(ADMIN_MD5), false),
        LoginCheck::Ok { .. }
    ));
}

#[test]
fn accounts_file_errors_name_file_and_line() {
    let cases = [
        ("ok pw\nlonely\n", 2, "expected"),
        ("a b c d\n", 1, "too many"),
        ("\n\na b level\n", 3, "not a number"),
        ("a md5:abc\n", 1, "md5"),
        ("a sha256:zz\n", 1, "sha256"),
        (&format!("{} pw\n", "x".repeat(21)), 1, "username"),
    ];
    for (text, line, needle) in cases {
        let err = parse_accounts(Path::new("seed.txt"), text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("seed.txt:{line}: ")),
            "{text:?}: {msg}"
        );
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
    let seeds = parse_accounts(Path::new("d.txt"), "a x\n#\nA y\n").unwrap();
    let err = AccountStore::new()
        .add_seeds(Path::new("d.txt"), &seeds)
        .unwrap_err();
    assert!(err.to_string().starts_with("d.txt:3: "), "{err}");
}

#[test]
fn missing_accounts_file_is_a_read_error() {
    let err = read_accounts_file(Path::new("/nonexistent/accounts.txt")).unwrap_err();
    assert!(matches!(err, BackendError::AccountsRead { .. }));
    assert!(err.to_string().contains("/nonexistent/accounts.txt"));
}
