"""The manifest line format and the chain rules, fed bytes: every edit, removal and forgery is named."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recordings.manifest import (
    GENESIS,
    ChainCheck,
    Manifest,
    ManifestError,
    check_chain,
    encode,
    entry_hash,
    parse_line,
)
from recordings.signing import TrustedKey, key_id_of

KEY = Ed25519PrivateKey.generate()
KEY_ID = key_id_of(KEY.public_key())
TRUSTED = {KEY_ID: TrustedKey(KEY.public_key(), KEY_ID, Path("test.pub.pem"))}
CHAIN = "2024/05/01"


def manifest(call_id: str, seq: int, prev: str, prev_call: str, **changes: object) -> Manifest:
    base = Manifest(
        chain=CHAIN,
        seq=seq,
        prev=prev,
        prev_call_id=prev_call,
        call_id=call_id,
        status="complete",
        sealed_at="2024-05-01T09:31:00.000Z",
        sealer="node/1",
        wav=f"{call_id}.wav",
        wav_sha256=hashlib.sha256(call_id.encode()).hexdigest(),
        wav_bytes=44,
        sidecar=f"{call_id}.json",
        sidecar_sha256=hashlib.sha256(b"s" + call_id.encode()).hexdigest(),
        sidecar_bytes=700,
        key_id=KEY_ID,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def chain(*call_ids: str, key: Ed25519PrivateKey = KEY) -> list[bytes]:
    lines: list[bytes] = []
    prev, prev_call = GENESIS, ""
    for seq, call_id in enumerate(call_ids, start=1):
        m = manifest(call_id, seq, prev, prev_call, key_id=key_id_of(key.public_key()))
        lines.append(encode(m, key.sign))
        prev, prev_call = entry_hash(lines[-1]), call_id
    return lines


def problems(check: ChainCheck) -> list[tuple[int | None, tuple[str, ...], str]]:
    return [(p.line, p.calls, p.reason) for p in check.problems]


def test_intact_chain_has_no_problems_and_its_head_is_the_last_line_hash() -> None:
    lines = chain("a", "b", "c")
    check = check_chain(lines, CHAIN, TRUSTED)
    assert check.problems == ()
    assert [e.manifest.call_id for e in check.entries] == ["a", "b", "c"]
    assert check.head == hashlib.sha256(lines[-1]).hexdigest()
    assert check_chain([], CHAIN, TRUSTED).head == GENESIS


def test_line_is_canonical_json_with_the_signature_over_the_rest() -> None:
    line = chain("a")[0]
    raw = json.loads(line)
    assert list(raw)[-1] == "sig" and raw["seq"] == 1 and raw["prev"] == GENESIS
    body = line[: line.rindex(b',"sig":')] + b"}"
    KEY.public_key().verify(base64.b64decode(raw["sig"]), body)  # what openssl pkeyutl checks
    parsed = parse_line(line)
    assert parsed.body == body and parsed.manifest.call_id == "a"


def test_edited_manifest_breaks_its_signature_and_the_next_link() -> None:
    lines = chain("a", "b", "c")
    lines[1] = lines[1].replace(b'"wav_bytes":44', b'"wav_bytes":45')
    found = problems(check_chain(lines, CHAIN, TRUSTED))
    assert found[0] == (2, ("b",), "signature does not verify: the manifest was changed after signing")
    assert found[1][:2] == (2, ("b", "c")) and "changed after it was chained" in found[1][2]
    assert all(calls[0] == "b" for _, calls, _ in found)


def test_removed_manifest_is_a_hole_that_names_the_removed_call() -> None:
    lines = chain("a", "b", "c", "d")
    del lines[1]
    found = problems(check_chain(lines, CHAIN, TRUSTED))
    assert len(found) == 1
    line, calls, reason = found[0]
    assert (line, calls) == (2, ("b", "c"))
    assert reason.startswith("removed from the chain: seq 2 missing before line 2 (call c)")


def test_removing_the_first_or_several_manifests_is_detected() -> None:
    lines = chain("a", "b", "c", "d")
    assert problems(check_chain(lines[1:], CHAIN, TRUSTED))[0][1] == ("a", "b")
    several = problems(check_chain([lines[0], lines[3]], CHAIN, TRUSTED))
    assert several[0][1] == ("c", "d")
    assert "seq 2..3 missing" in several[0][2] and "1 call(s) before" in several[0][2]


def test_reordered_or_duplicated_lines_are_named() -> None:
    lines = chain("a", "b", "c")
    found = problems(check_chain([lines[0], lines[2], lines[1]], CHAIN, TRUSTED))
    assert any(calls[0] == "b" and "reordered or duplicated" in reason for _, calls, reason in found)


def test_reformatted_line_is_not_canonical_even_though_it_parses() -> None:
    lines = chain("a", "b")
    lines[0] = json.dumps(json.loads(lines[0])).encode()  # same content, spaces added
    found = problems(check_chain(lines, CHAIN, TRUSTED))
    assert found[0][:2] == (1, ("a",)) and "not in canonical form" in found[0][2]


def test_untrusted_key_and_foreign_chain_are_refused() -> None:
    other = Ed25519PrivateKey.generate()
    found = problems(check_chain(chain("a", key=other), CHAIN, TRUSTED))
    assert found == [
        (
            1,
            ("a",),
            f"signed by key {key_id_of(other.public_key())[:16]}..., which is not a trusted public key",
        )
    ]
    moved = problems(check_chain(chain("a"), "2024/05/02", TRUSTED))
    assert moved == [(1, ("a",), "belongs to chain '2024/05/01', not '2024/05/02': it was moved here")]


def test_garbage_and_torn_tail_are_reported_without_stopping_the_check() -> None:
    lines = chain("a", "b")
    check = check_chain([lines[0], b"not json", lines[1]], CHAIN, TRUSTED, torn_tail=True)
    found = problems(check)
    assert found[0][:2] == (2, ()) and found[0][2].startswith("not a valid manifest: not JSON")
    assert found[-1] == (4, (), "last line is incomplete: a seal was cut short or the file was truncated")
    assert [e.manifest.call_id for e in check.entries] == ["a", "b"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw.pop("sig"), "no signature"),
        (lambda raw: raw.update(sig="***"), "signature is not base64"),
        (lambda raw: raw.pop("wav_sha256"), "missing wav_sha256"),
        (lambda raw: raw.update(extra=1), "unknown fields ['extra']"),
        (lambda raw: raw.update(seq="1"), "seq: expected an integer"),
        (lambda raw: raw.update(v=2), "version 2 is not supported"),
        (lambda raw: raw.update(event="deleted"), "event 'deleted' is not one of sealed, purged"),
        (lambda raw: raw.update(event="purged"), "missing reason, actor"),
        (lambda raw: raw.update(reason="x"), "unknown fields ['reason']"),
        (lambda raw: raw.update(prev="abc"), "prev: not a hex SHA-256"),
    ],
)
def test_parse_line_names_the_broken_rule(mutate: object, message: str) -> None:
    raw = json.loads(chain("a")[0])
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(ManifestError) as info:
        parse_line(json.dumps(raw, separators=(",", ":")).encode())
    assert message in str(info.value)


def test_a_later_manifest_of_the_same_call_supersedes_the_earlier() -> None:
    first = encode(manifest("a", 1, GENESIS, ""), KEY.sign)
    second = encode(manifest("a", 2, entry_hash(first), "a", wav_bytes=88), KEY.sign)
    check = check_chain([first, second], CHAIN, TRUSTED)
    assert check.problems == ()
    assert check.latest()["a"].manifest.wav_bytes == 88 and check.latest()["a"].line == 2


def tombstone(sealed: Manifest, seq: int, prev: str, prev_call: str) -> Manifest:
    return dataclasses.replace(
        sealed,
        seq=seq,
        prev=prev,
        prev_call_id=prev_call,
        event="purged",
        reason="retention 90 days (default)",
        actor="alice",
        sealed_at="2024-08-01T00:00:00.000Z",
    )


def test_a_tombstone_is_a_signed_chain_entry_with_reason_and_actor() -> None:
    lines = chain("a", "b")
    sealed = parse_line(lines[0]).manifest
    stone = encode(tombstone(sealed, 3, entry_hash(lines[1]), "b"), KEY.sign)
    assert b'"event":"purged"' in stone and b'"reason":"retention 90 days (default)"' in stone
    assert b'"reason"' not in lines[0] and b'"actor"' not in lines[0]  # sealed lines are unchanged
    parsed = parse_line(stone)
    assert parsed.manifest.purged and parsed.manifest.actor == "alice"
    check = check_chain([*lines, stone], CHAIN, TRUSTED)
    assert check.problems == ()
    assert check.latest()["a"].manifest.purged and check.latest()["a"].line == 3


def test_an_edited_tombstone_reason_breaks_its_signature() -> None:
    lines = chain("a")
    stone = encode(tombstone(parse_line(lines[0]).manifest, 2, entry_hash(lines[0]), "a"), KEY.sign)
    edited = stone.replace(b"retention 90 days", b"retention 10 days")
    found = problems(check_chain([lines[0], edited], CHAIN, TRUSTED))
    assert found == [(2, ("a",), "signature does not verify: the manifest was changed after signing")]
