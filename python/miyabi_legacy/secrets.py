"""What looks like a secret in text (user data) and in tags: its kind and line, never its value.

The same rules as the Rust engine's (src/assessment/secrets.rs); both are held to
testdata/secrets.json, so that the legacy discovery and the Rust one agree.
"""

import re

CREDENTIAL_NAME = r"(?i:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)"

RULES = [
    ("AWS Access Key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    ("Private Key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("GitHub Token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b")),
    ("Slack Token", re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}")),
    ("JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("Basic Auth Credentials", re.compile(r"://[^\s:/@]+:[^\s:/@]+@")),
]
ASSIGNMENT = re.compile(r"[A-Za-z0-9_.-]*" + CREDENTIAL_NAME + r"""[A-Za-z0-9_.-]*["']?\s*(?::=|=|:)\s*["']?([^\s"',;#]+)""")
CREDENTIAL_KEY = re.compile(CREDENTIAL_NAME)
PLAIN_WORDS = {"true", "false", "none", "null", "required", "optional", "enabled", "disabled"}
REDACTED = "[redacted]"


def _plain(value):
    return len(value) < 6 or value[0] in "$<{%" or value.lower() in PLAIN_WORDS


def _line_kinds(line):
    kinds = [kind for kind, pattern in RULES if pattern.search(line)]
    if any(not _plain(m.group(1)) for m in ASSIGNMENT.finditer(line)):
        kinds.append("Secret Keyword")
    return kinds


def scan(text):
    """Every line (split at "\n" as Rust's str::lines does) of `text` holding something like a secret: [{"line": n, "kind": k}, ...]."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    return [{"line": n, "kind": kind}
            for n, line in enumerate(lines, start=1)
            for kind in _line_kinds(line)]


def is_secret_tag(key, value):
    """True when a tag's value should not be kept."""
    return bool(value and CREDENTIAL_KEY.search(key)) or any(p.search(value) for _, p in RULES)
