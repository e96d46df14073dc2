//! Finds what looks like a secret in text (an instance's user data) and in tags, naming its kind
//! and line, never its value.
//!
//! The rules are a small, documented set after the detectors of Yelp's detect-secrets: AWS
//! access key ids, private key blocks, GitHub and Slack tokens, JSON Web Tokens, credentials in
//! URLs, and a value assigned to a credential-like name (`password=…`, `API_TOKEN: …`). Prowler
//! now scans user data with Kingfisher's much larger rule set, so the check built on these rules
//! has an id of the engine's own. The legacy Python discovery carries the same rules
//! (`python/miyabi_legacy/secrets.py`), and both are held to `testdata/secrets.json`.

use std::sync::LazyLock;

use regex::Regex;

use crate::world::SecretHit;

/// A name that says its value is a credential.
const CREDENTIAL_NAME: &str =
    r"(?i:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)";

struct Rule {
    kind: &'static str,
    pattern: Regex,
}

fn rule(kind: &'static str, pattern: &str) -> Rule {
    Rule {
        kind,
        // The patterns are constants, checked by the unit tests: a failure is a build defect.
        pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("secret rule {kind}: {e}")),
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        rule("AWS Access Key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        rule("Private Key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        rule("GitHub Token", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b"),
        rule("Slack Token", r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
        rule(
            "JSON Web Token",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ),
        rule("Basic Auth Credentials", r"://[^\s:/@]+:[^\s:/@]+@"),
    ]
});

/// `NAME = value`, `NAME: value`, `"NAME": "value"` where NAME names a credential; the value
/// is captured.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = format!(r#"[A-Za-z0-9_.-]*{CREDENTIAL_NAME}[A-Za-z0-9_.-]*["']?\s*(?::=|=|:)\s*["']?([^\s"',;#]+)"#);
    Regex::new(&pattern).unwrap_or_else(|e| panic!("secret assignment rule: {e}"))
});

static CREDENTIAL_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(CREDENTIAL_NAME).unwrap_or_else(|e| panic!("credential name rule: {e}")));

/// A value too plain to be a secret: a reference to another variable, a placeholder, a flag.
fn plain(value: &str) -> bool {
    value.len() < 6
        || value.starts_with('$')
        || value.starts_with('<')
        || value.starts_with('{')
        || value.starts_with('%')
        || [
            "true", "false", "none", "null", "required", "optional", "enabled", "disabled",
        ]
        .iter()
        .any(|w| value.eq_ignore_ascii_case(w))
}

/// The kinds of secret on one line.
fn line_kinds(line: &str) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = RULES
        .iter()
        .filter(|r| r.pattern.is_match(line))
        .map(|r| r.kind)
        .collect();
    let assigned = ASSIGNMENT
        .captures_iter(line)
        .filter_map(|c| c.get(1))
        .any(|value| !plain(value.as_str()));
    if assigned {
        kinds.push("Secret Keyword");
    }
    kinds
}

/// Every line of `text` that holds something like a secret, with the rule that matched, in
/// order of line.
#[must_use]
pub fn scan(text: &str) -> Vec<SecretHit> {
    text.lines()
        .zip(1u32..)
        .flat_map(|(line, n)| {
            line_kinds(line).into_iter().map(move |kind| SecretHit {
                line: n,
                kind: kind.to_owned(),
            })
        })
        .collect()
}

/// True when a tag's value should not be kept: its key names a credential and it has a value,
/// or the value looks like a secret on its own.
#[must_use]
pub fn is_secret_tag(key: &str, value: &str) -> bool {
    (!value.is_empty() && CREDENTIAL_KEY.is_match(key)) || RULES.iter().any(|r| r.pattern.is_match(value))
}

/// What a redacted tag value reads.
pub const REDACTED: &str = "[redacted]";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Cases {
        text: Vec<TextCase>,
        tags: Vec<TagCase>,
    }

    #[derive(serde::Deserialize)]
    struct TextCase {
        text: String,
        hits: Vec<(u32, String)>,
    }

    #[derive(serde::Deserialize)]
    struct TagCase {
        key: String,
        value: String,
        secret: bool,
    }

    /// The cases the legacy Python rules are held to as well.
    #[test]
    fn the_rules_find_what_the_shared_cases_say_and_nothing_else() {
        let cases: Cases = serde_json::from_str(include_str!("../../testdata/secrets.json")).unwrap();
        for case in &cases.text {
            let found: Vec<(u32, String)> = scan(&case.text).into_iter().map(|h| (h.line, h.kind)).collect();
            assert_eq!(found, case.hits, "{:?}", case.text);
        }
        for case in &cases.tags {
            assert_eq!(
                is_secret_tag(&case.key, &case.value),
                case.secret,
                "{}={}",
                case.key,
                case.value
            );
        }
    }
}
