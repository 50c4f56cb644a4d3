-- packet-service schema 1 (SQLite). Documented in docs/database.md; the
-- PostgreSQL schema in ../postgres has the same tables and columns.

-- One row per account. The password is stored only as argon2id hashes of
-- the two client digests (SHA-256 hex, MD5 hex); either may be missing.
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    username    TEXT    NOT NULL,
    name_key    TEXT    NOT NULL UNIQUE,
    access      INTEGER NOT NULL,
    sha256_hash TEXT,
    md5_hash    TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per character; slot is the position in the account's list.
CREATE TABLE characters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot          INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,
    race          INTEGER NOT NULL,
    stone         INTEGER NOT NULL,
    face          INTEGER NOT NULL,
    hair          INTEGER NOT NULL,
    level         INTEGER NOT NULL,
    job           INTEGER NOT NULL,
    map           INTEGER NOT NULL,
    x             REAL    NOT NULL,
    y             REAL    NOT NULL,
    hp            INTEGER NOT NULL,
    mp            INTEGER NOT NULL,
    strength      INTEGER NOT NULL,
    dexterity     INTEGER NOT NULL,
    intellect     INTEGER NOT NULL,
    concentration INTEGER NOT NULL,
    charm         INTEGER NOT NULL,
    sense         INTEGER NOT NULL,
    delete_at     INTEGER,
    created_at    INTEGER NOT NULL,
    saved_at      INTEGER NOT NULL
);
CREATE INDEX characters_account_slot ON characters (account_id, slot);

-- Items of a character: slots 0..=7 are the equipped items in the order of
-- the character list (helmet, armor, gauntlet, boots, goggles, backpack,
-- weapon right, weapon left); higher slots are the bag.
CREATE TABLE inventory (
    character_id INTEGER NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    slot         INTEGER NOT NULL,
    item         INTEGER NOT NULL,
    amount       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (character_id, slot)
);
