"""Differences of serialization, not of data: escaping, hash recipes, Unicode normalization.

Two runs can hold the same text yet differ byte for byte: one JSON writer escapes ``“`` as
``\\u201c``, one implementation hashes ASCII-escaped JSON, one source stores ``é`` decomposed. These
findings never make runs differ; they explain why hashes or bytes do.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from posttrain.parity.artifacts import FIRST_BATCH, RENDERED, SNAPSHOT, RunArtifacts, canonical_json, hash_hex
from posttrain.parity.model import Finding

LAYER = "dataset_snapshot"

# Hash recipes seen in other implementations, tried in order to say how a stored hash was made.
_RECIPES: list[tuple[str, Callable[[Any], bytes]]] = [
    ("canonical", canonical_json),
    ("ASCII-escaped JSON", lambda m: json.dumps(m, sort_keys=True, separators=(",", ":")).encode()),
    ("ASCII-escaped JSON with spaces", lambda m: json.dumps(m, sort_keys=True).encode()),
    ("unsorted ASCII-escaped JSON with spaces", lambda m: json.dumps(m).encode()),
    ("UTF-8 JSON with spaces", lambda m: json.dumps(m, sort_keys=True, ensure_ascii=False).encode()),
    ("unsorted compact UTF-8 JSON", lambda m: json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()),
]


def nfc(obj: Any) -> Any:
    """``obj`` with every string in Unicode NFC form."""
    if isinstance(obj, str):
        return unicodedata.normalize("NFC", obj)
    if isinstance(obj, list):
        return [nfc(x) for x in obj]
    if isinstance(obj, dict):
        return {k: nfc(v) for k, v in obj.items()}
    return obj


def sample_key(messages: Any) -> bytes:
    """Identity of a sample's content, independent of how it was serialized or normalized."""
    return hashlib.sha256(canonical_json(nfc(messages))).digest()


def hash_recipe(messages: Any, stored: str) -> str:
    """Which recipe reproduces ``stored`` from ``messages`` ("unknown" when none does)."""
    want = hash_hex(stored)
    for name, recipe in _RECIPES:
        if hashlib.sha256(recipe(messages)).hexdigest() == want:
            return name
    return "unknown"


def escaped_chars(raw: bytes) -> list[str]:
    """Non-ASCII characters a JSON file writes as ``\\uXXXX`` escapes (surrogate pairs joined), in order."""
    chars: list[str] = []
    for hi, lo in re.findall(rb"\\u([0-9a-fA-F]{4})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?", raw):
        code = int(hi, 16)
        if code < 0x80:
            continue
        ch = (chr(code) + chr(int(lo, 16))).encode("utf-16", "surrogatepass").decode("utf-16") if lo else chr(code)
        if ch not in chars:
            chars.append(ch)
    return chars


def describe(ch: str) -> str:
    """``'“' U+201C LEFT DOUBLE QUOTATION MARK as \\u201c``."""
    code = "+".join(f"U+{ord(c):04X}" for c in ch)
    name = " ".join(unicodedata.name(c, "?") for c in ch)
    data = ch.encode("utf-16-be")
    escaped = "".join(f"\\u{int.from_bytes(data[i : i + 2], 'big'):04x}" for i in range(0, len(data), 2))
    return f"'{ch}' {code} {name} as {escaped}"


def _first_string_difference(x: Any, y: Any) -> tuple[str, str] | None:
    """The first pair of unequal strings in two structures of the same shape."""
    if isinstance(x, str) and isinstance(y, str):
        if x == y:
            return None
        i = next((k for k, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
        return x[i : i + 2], y[i : i + 2]
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(x, list) and isinstance(y, list):
        pairs = zip(x, y, strict=False)
    elif isinstance(x, dict) and isinstance(y, dict):
        pairs = ((x[k], y[k]) for k in sorted(set(x) & set(y)))
    else:
        return None
    return next((d for p, q in pairs if (d := _first_string_difference(p, q)) is not None), None)


def _codepoints(s: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in s)


def serialization_findings(a: RunArtifacts, b: RunArtifacts, a_to_b: list[int | None]) -> list[Finding]:
    """Findings for snapshot samples matched by content (``a_to_b``) whose bytes or hashes differ."""
    assert a.snapshot is not None and b.snapshot is not None
    sa, sb = a.snapshot["samples"], b.snapshot["samples"]
    pairs = [(i, j) for i, j in enumerate(a_to_b) if j is not None]
    out: list[Finding] = []

    hash_mismatch = [(i, j) for i, j in pairs if hash_hex(sa[i]["content_hash"]) != hash_hex(sb[j]["content_hash"])]
    if hash_mismatch:
        i, j = hash_mismatch[0]
        how = {"a": hash_recipe(sa[i]["messages"], sa[i]["content_hash"]),
               "b": hash_recipe(sb[j]["messages"], sb[j]["content_hash"])}
        out.append(Finding(
            LAYER, "serialization_only",
            f"content_hash differs for {len(hash_mismatch)} of {len(pairs)} samples whose text is equal: the hashes "
            f"cover differently serialized JSON (A: {how['a']}, B: {how['b']}; the canonical form is sorted keys, "
            "compact separators, literal UTF-8)",
            {"positions_a": [i for i, _ in hash_mismatch], "hash_method": how,
             "escaped_chars_a": escaped_chars(a.raw.get(SNAPSHOT, b"")),
             "escaped_chars_b": escaped_chars(b.raw.get(SNAPSHOT, b""))},
            data_difference=False))

    escaping = _escaping_finding(a, b)
    if escaping is not None:
        out.append(escaping)

    nfc_only = [(i, j) for i, j in pairs if sa[i]["messages"] != sb[j]["messages"]]
    if nfc_only:
        i, j = nfc_only[0]
        first = _first_string_difference(sa[i]["messages"], sb[j]["messages"])
        example = (f"; first at sample {i}: A has {_codepoints(first[0])}, B has {_codepoints(first[1])}"
                   if first else "")
        out.append(Finding(
            LAYER, "serialization_only",
            f"{len(nfc_only)} samples are equal only after Unicode NFC normalization{example}",
            {"positions_a": [i for i, _ in nfc_only],
             "example_a": first[0] if first else None, "example_b": first[1] if first else None},
            data_difference=False))
    return out

def _escaping_finding(a: RunArtifacts, b: RunArtifacts) -> Finding | None:
    """A finding when the artifact files escape non-ASCII characters differently (same decoded text)."""
    files: dict[str, dict[str, list[str]]] = {}
    for name in (SNAPSHOT, RENDERED, FIRST_BATCH):
        ea, eb = escaped_chars(a.raw.get(name, b"")), escaped_chars(b.raw.get(name, b""))
        if ea != eb:
            files[name] = {"escaped_chars_a": ea, "escaped_chars_b": eb}
    if not files:
        return None
    parts = []
    for name, ev in files.items():
        for side in ("a", "b"):
            chars = ev[f"escaped_chars_{side}"]
            if chars:
                shown = "; ".join(describe(c) for c in chars[:4]) + ("; …" if len(chars) > 4 else "")
                parts.append(f"{name} of {side.upper()} escapes {len(chars)} non-ASCII character(s) ({shown})")
    return Finding(
        LAYER, "serialization_only",
        "JSON escaping differs, the decoded text is the same: " + "; ".join(parts)
        + " while the other side writes them as literal UTF-8",
        {"files": files}, data_difference=False)
