//! Every section reference in the repository names a document in `docs/`
//! and a section of it that exists, every local Markdown link resolves, and
//! the README links both documents. A stale pointer in a doc is a bug
//! (docs/architecture.md §13.15); this test finds the ones that can be found
//! mechanically.
//!
//! # The rules
//!
//! **Files.** Every text file git tracks (or would track: untracked files
//! that are not ignored count too), read as UTF-8; files that are not UTF-8
//! are skipped. Without git, every file below the repository root except
//! `.git`, `target` and the fuzz output directories.
//!
//! **References.** A reference is a section sign (U+00A7) followed by a
//! section number, optionally followed by decision ids.
//!
//! - *Document.* The sign must follow a document name and a space, as in
//!   `docs/protocol.md §9 D5` or `architecture.md §3`: `docs/<name>.md` and
//!   `<name>.md` both mean the file `docs/<name>.md`, and a backtick may close
//!   the name. More references may follow on the same line, separated only
//!   by spaces, `,` `;` `/` `–` `-`, backticks and the words `and` / `or`;
//!   they share the document (`docs/protocol.md §3.1, §3.11 and §9 D10`,
//!   `protocol.md §3.6–§3.9`). Inside a file under `docs/`, a sign with no
//!   document named refers to that file. Anything else fails: a sign with no
//!   document named, or a document outside `docs/`.
//! - *Section.* A number such as `9`, `3.6` or `10.5.1` exists when the
//!   document has a Markdown heading whose first word is that number, with
//!   or without a final dot (`## 9. Decisions …`, `### 3.6 Character list`).
//!   Headings inside fenced code blocks do not count.
//! - *Decision.* Ids after the number (` D5`, or ` D4/D5/D9`) exist when that
//!   section has a table row whose first cell is the id, before the next
//!   heading of the same or a higher level.
//!
//! **Links.** In Markdown files, a local link `[text](path)` must name an
//! existing file, relative to the linking file, and an anchor
//! (`path.md#anchor`, `#anchor`) must be the slug of a heading of the target:
//! the heading lowercased, letters, digits, `-` and `_` kept, spaces turned
//! into `-`, everything else dropped (GitHub's rule; a repeated slug gets
//! `-1`, `-2`, …).

mod repo;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Component, Path};

use repo::{repository_files, root};

/// The section sign, written as an escape so that this file's own tests do
/// not contain references.
const SIGN: char = '\u{a7}';

/// Characters that may separate the references of one group.
const SEPARATORS: &str = ",;/–-`";

/// The file's text, or `None` if it is gone or not UTF-8.
fn text_of(root: &Path, rel: &str) -> Option<String> {
    String::from_utf8(fs::read(root.join(rel)).ok()?).ok()
}

// ---- headings -----------------------------------------------------------------

/// A Markdown heading.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Heading {
    /// Number of `#`.
    level: usize,
    /// Its section number (`"3.6"`), if its first word is one.
    number: Option<String>,
    /// Its anchor slug.
    slug: String,
    /// 0-based line index.
    line: usize,
}

/// A Markdown document: its lines and headings.
#[derive(Debug, Default)]
struct Doc {
    lines: Vec<String>,
    headings: Vec<Heading>,
}

impl Doc {
    fn parse(text: &str) -> Doc {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut headings = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (line, (content, fenced)) in lines.iter().zip(fence_flags(&lines)).enumerate() {
            if fenced {
                continue;
            }
            let level = content.chars().take_while(|&c| c == '#').count();
            let Some(title) = content[level..].strip_prefix(' ') else {
                continue;
            };
            if !(1..=6).contains(&level) {
                continue;
            }
            let title = title.trim();
            let base = slug(title);
            let n = seen.entry(base.clone()).or_insert(0);
            let slug = if *n == 0 { base } else { format!("{base}-{n}") };
            *n += 1;
            headings.push(Heading {
                level,
                number: section_number(title),
                slug,
                line,
            });
        }
        Doc { lines, headings }
    }

    fn section(&self, number: &str) -> Option<&Heading> {
        self.headings
            .iter()
            .find(|h| h.number.as_deref() == Some(number))
    }

    /// Whether section `number` has a table row whose first cell is `id`.
    fn has_decision(&self, number: &str, id: &str) -> bool {
        let Some(h) = self.section(number) else {
            return false;
        };
        let end = self
            .headings
            .iter()
            .find(|o| o.line > h.line && o.level <= h.level)
            .map_or(self.lines.len(), |o| o.line);
        self.lines[h.line + 1..end].iter().any(|l| {
            let row = l.trim();
            row.starts_with('|') && row.split('|').nth(1).map(str::trim) == Some(id)
        })
    }

    fn has_anchor(&self, anchor: &str) -> bool {
        self.headings.iter().any(|h| h.slug == anchor)
    }
}

/// For each line, whether it is inside (or opens or closes) a fenced block.
fn fence_flags(lines: &[String]) -> Vec<bool> {
    let mut inside = false;
    lines
        .iter()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("```") || t.starts_with("~~~") {
                inside = !inside;
                true
            } else {
                inside
            }
        })
        .collect()
}

/// `"3.6"` for `"3.6 Character list"` and `"9"` for `"9. Decisions"`.
fn section_number(title: &str) -> Option<String> {
    let word = title.split_whitespace().next()?;
    let word = word.strip_suffix('.').unwrap_or(word);
    let valid = !word.is_empty()
        && word
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    valid.then(|| word.to_owned())
}

/// GitHub's anchor for a heading.
fn slug(title: &str) -> String {
    title
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

// ---- references -----------------------------------------------------------------

/// One section reference.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ref {
    /// Repository path of the document, e.g. `docs/protocol.md`.
    doc: String,
    /// Section number, e.g. `9` or `3.6`.
    section: String,
    /// Decision ids after it, e.g. `["D4", "D5"]`.
    decisions: Vec<String>,
}

/// The references on one line, in order. `home` is the document a
/// reference without a document name means (the file itself, for files in
/// `docs/`). An `Err` says why a sign is not a valid reference.
fn refs_in_line(line: &str, home: Option<&str>) -> Vec<Result<Ref, String>> {
    let mut out = Vec::new();
    // The document of the current group and where its last reference ended.
    let mut group: Option<(String, usize)> = None;
    for (at, _) in line.match_indices(SIGN) {
        let continued = group
            .as_ref()
            .filter(|(_, end)| *end <= at && is_separator(&line[*end..at]))
            .map(|(doc, _)| doc.clone());
        let doc = match continued {
            Some(doc) => Ok(doc),
            None => match doc_before(&line[..at]) {
                Some(name) => resolve_doc(name),
                None => home
                    .map(str::to_owned)
                    .ok_or_else(|| "no document named before it".to_owned()),
            },
        };
        let start = at + SIGN.len_utf8();
        let parsed = parse_target(&line[start..]);
        match (doc, parsed) {
            (Ok(doc), Some((section, decisions, len))) => {
                group = Some((doc.clone(), start + len));
                out.push(Ok(Ref {
                    doc,
                    section,
                    decisions,
                }));
            }
            (Err(e), _) => {
                group = None;
                out.push(Err(e));
            }
            (Ok(_), None) => {
                group = None;
                out.push(Err("no section number after it".to_owned()));
            }
        }
    }
    out
}

fn is_separator(between: &str) -> bool {
    between
        .split(|c: char| c.is_whitespace() || SEPARATORS.contains(c))
        .all(|word| word.is_empty() || word == "and" || word == "or")
}

/// The document name right before a sign: `docs/protocol.md` followed by a
/// space, or `` `protocol.md` `` and a space.
fn doc_before(prefix: &str) -> Option<&str> {
    if !prefix.ends_with(' ') {
        return None;
    }
    let p = prefix.trim_end_matches(' ');
    let p = p.strip_suffix('`').unwrap_or(p);
    let start = p
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let name = &p[start..];
    name.ends_with(".md").then_some(name)
}

/// `docs/<name>.md` for `<name>.md` or `docs/<name>.md`; an error for anything
/// outside `docs/`.
fn resolve_doc(name: &str) -> Result<String, String> {
    let file = name.strip_prefix("docs/").unwrap_or(name);
    if file.contains('/') {
        return Err(format!(
            "{name} is not in docs/: references point into docs/ only"
        ));
    }
    Ok(format!("docs/{file}"))
}

/// After a sign: the section number, the decision ids and the bytes used.
fn parse_target(rest: &str) -> Option<(String, Vec<String>, usize)> {
    let section = leading_number(rest)?;
    let mut used = section.len();
    let mut decisions = Vec::new();
    if let Some(after) = rest[used..].strip_prefix(" D") {
        if let Some(n) = decision_digits(after) {
            decisions.push(format!("D{n}"));
            used += 2 + n.len();
            while let Some(more) = rest[used..].strip_prefix("/D") {
                let Some(n) = decision_digits(more) else {
                    break;
                };
                decisions.push(format!("D{n}"));
                used += 2 + n.len();
            }
        }
    }
    Some((section.to_owned(), decisions, used))
}

/// `3.6` of `3.6–…`, `9` of `9.` (a final dot ends the sentence).
fn leading_number(s: &str) -> Option<&str> {
    let mut end = 0;
    let bytes = s.as_bytes();
    loop {
        let digits = bytes[end..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            break;
        }
        end += digits;
        let more =
            bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
        if !more {
            break;
        }
        end += 1;
    }
    (end > 0).then(|| &s[..end])
}

/// The digits of a decision id, if they end at a word boundary.
fn decision_digits(s: &str) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    let boundary = s[n..].chars().next().is_none_or(|c| !c.is_alphanumeric());
    (n > 0 && boundary).then(|| &s[..n])
}

/// What is wrong with a reference, if anything.
fn check_ref(r: &Ref, docs: &HashMap<String, Doc>) -> Result<(), String> {
    let doc = docs
        .get(&r.doc)
        .ok_or_else(|| format!("{} does not exist", r.doc))?;
    if doc.section(&r.section).is_none() {
        return Err(format!("{} has no section {}", r.doc, r.section));
    }
    for d in &r.decisions {
        if !doc.has_decision(&r.section, d) {
            return Err(format!(
                "{} section {} has no decision {d}",
                r.doc, r.section
            ));
        }
    }
    Ok(())
}

/// Every Markdown document in `docs/`, parsed.
fn load_docs(root: &Path, files: &[String]) -> HashMap<String, Doc> {
    files
        .iter()
        .filter(|f| f.starts_with("docs/") && f.ends_with(".md"))
        .filter_map(|f| Some((f.clone(), Doc::parse(&text_of(root, f)?))))
        .collect()
}

#[test]
fn every_section_reference_names_a_document_and_a_section_that_exist() {
    let root = root();
    let files = repository_files(&root);
    let docs = load_docs(&root, &files);
    assert!(
        docs.contains_key("docs/protocol.md") && docs.contains_key("docs/architecture.md"),
        "docs/protocol.md and docs/architecture.md must exist"
    );
    let mut errors = Vec::new();
    let mut checked = 0;
    for file in &files {
        let Some(text) = text_of(&root, file) else {
            continue;
        };
        let home = docs.contains_key(file).then_some(file.as_str());
        for (n, line) in text.lines().enumerate() {
            for r in refs_in_line(line, home) {
                checked += 1;
                if let Err(e) = r.and_then(|r| check_ref(&r, &docs)) {
                    errors.push(format!("{file}:{}: {e}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} broken section references (see the rules in tests/doc_refs.rs):\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(checked > 50, "only {checked} references found");
}

// ---- links ----------------------------------------------------------------------

/// The local link targets of a Markdown line: `](target)`, without titles.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &line[at + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split_whitespace().next().unwrap_or("");
            let local =
                !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:");
            local.then_some(target)
        })
        .collect()
}

/// `base`'s directory joined with `rel`, `.` and `..` resolved.
fn join_relative(base: &str, rel: &str) -> String {
    let mut parts: Vec<String> = Path::new(base)
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[test]
fn local_markdown_links_resolve() {
    let root = root();
    let files = repository_files(&root);
    let markdown: Vec<&String> = files.iter().filter(|f| f.ends_with(".md")).collect();
    let mut parsed: HashMap<String, Doc> = HashMap::new();
    for f in &markdown {
        if let Some(text) = text_of(&root, f) {
            parsed.insert((*f).clone(), Doc::parse(&text));
        }
    }
    let mut errors = BTreeSet::new();
    for (file, doc) in &parsed {
        for (n, (line, fenced)) in doc.lines.iter().zip(fence_flags(&doc.lines)).enumerate() {
            if fenced {
                continue;
            }
            for target in link_targets(line) {
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    join_relative(file, path)
                };
                let problem = if !root.join(&resolved).exists() {
                    Some(format!("{resolved} does not exist"))
                } else if anchor.is_empty() || !resolved.ends_with(".md") {
                    None
                } else {
                    match parsed.get(&resolved) {
                        Some(d) if d.has_anchor(anchor) => None,
                        Some(_) => Some(format!("{resolved} has no heading #{anchor}")),
                        None => Some(format!("{resolved} is not a checked Markdown file")),
                    }
                };
                if let Some(p) = problem {
                    errors.insert(format!("{file}:{}: link ({target}): {p}", n + 1));
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "broken Markdown links:\n{}",
        errors.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn readme_links_both_documents() {
    let readme = text_of(&root(), "README.md").expect("README.md");
    for doc in ["docs/protocol.md", "docs/architecture.md"] {
        assert!(
            readme.contains(&format!("]({doc}")),
            "README.md has no link to {doc}"
        );
    }
}

// ---- the checker itself -------------------------------------------------------------

/// `$` stands for the section sign in these tests.
fn sign(s: &str) -> String {
    s.replace('$', &SIGN.to_string())
}

fn refs(line: &str, home: Option<&str>) -> Vec<Result<Ref, String>> {
    refs_in_line(&sign(line), home)
}

fn r(doc: &str, section: &str, decisions: &[&str]) -> Result<Ref, String> {
    Ok(Ref {
        doc: doc.to_owned(),
        section: section.to_owned(),
        decisions: decisions.iter().map(|d| (*d).to_owned()).collect(),
    })
}

const PROTOCOL: &str = "docs/protocol.md";

#[test]
fn groups_share_their_document() {
    assert_eq!(
        refs("see docs/protocol.md $3.1, $3.11 and $9 D4/D10.", None),
        vec![
            r(PROTOCOL, "3.1", &[]),
            r(PROTOCOL, "3.11", &[]),
            r(PROTOCOL, "9", &["D4", "D10"]),
        ]
    );
    assert_eq!(
        refs("(`protocol.md` $3.6–$3.9; architecture.md $4.)", None),
        vec![
            r(PROTOCOL, "3.6", &[]),
            r(PROTOCOL, "3.9", &[]),
            r("docs/architecture.md", "4", &[]),
        ]
    );
    assert_eq!(
        refs("[docs/protocol.md $9 D3](docs/protocol.md#x)", None),
        vec![r(PROTOCOL, "9", &["D3"])]
    );
}

#[test]
fn a_reference_without_a_document_fails_outside_docs() {
    assert!(refs("as $9 D5 says", None)[0].is_err());
    assert!(refs("architecture $4", None)[0].is_err());
    // Other text ends a group.
    let line = refs("protocol.md $4 step 10, then $5", None);
    assert_eq!(line[0], r(PROTOCOL, "4", &[]));
    assert!(line[1].is_err());
    // Inside a document, a bare reference is to the document itself.
    assert_eq!(
        refs("(D2, $1.6)", Some(PROTOCOL)),
        vec![r(PROTOCOL, "1.6", &[])]
    );
}

#[test]
fn only_documents_in_docs_are_referenced() {
    assert!(refs("src/conn/LIFECYCLE.md $3", None)[0].is_err());
    assert!(refs("protocol.md $ 4", None)[0].is_err());
    let docs = HashMap::from([(PROTOCOL.to_owned(), Doc::default())]);
    let missing = refs("missing.md $4", None).remove(0).expect("parsed");
    assert_eq!(
        check_ref(&missing, &docs),
        Err("docs/missing.md does not exist".to_owned())
    );
}

#[test]
fn sections_decisions_and_anchors() {
    let doc = Doc::parse(
        "# Title\n## 1. Framing\n### 1.1 Header (6 bytes)\n```\n## 7. not a heading\n```\n\
         ## 9. Decisions for packet-service\n| # | Topic |\n|---|---|\n| D5 | Errors |\n\
         ## 10. Later\n| D6 | after the section |\n### 3.6 Character list — route: character\n\
         #### 10.5.1 Connect\n",
    );
    let docs = HashMap::from([(PROTOCOL.to_owned(), doc)]);
    let check = |line: &str| {
        let r = refs(line, None).remove(0).expect("parsed");
        check_ref(&r, &docs)
    };
    assert_eq!(check("protocol.md $1.1"), Ok(()));
    assert_eq!(check("protocol.md $9 D5"), Ok(()));
    assert_eq!(check("protocol.md $3.6"), Ok(()));
    assert_eq!(check("protocol.md $10.5.1."), Ok(()));
    assert!(check("protocol.md $10.5.2").is_err());
    assert!(
        check("protocol.md $7").is_err(),
        "headings in fences do not count"
    );
    assert!(check("protocol.md $1.2").is_err());
    assert!(
        check("protocol.md $9 D6").is_err(),
        "D6 is under section 10"
    );
    let doc = &docs[PROTOCOL];
    assert!(doc.has_anchor("9-decisions-for-packet-service"));
    assert!(doc.has_anchor("11-header-6-bytes"));
    assert!(doc.has_anchor("36-character-list--route-character"));
    assert!(!doc.has_anchor("7-not-a-heading"));
}

#[test]
fn link_targets_and_paths() {
    assert_eq!(
        link_targets("[a](docs/x.md#y) [b](https://e.org) [c](#z \"title\")"),
        vec!["docs/x.md#y", "#z"]
    );
    assert_eq!(
        join_relative("docs/architecture.md", "../proto/README.md"),
        "proto/README.md"
    );
    assert_eq!(
        join_relative("README.md", "docs/protocol.md"),
        "docs/protocol.md"
    );
}
