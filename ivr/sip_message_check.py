"""Malformed-request checks pjsip's parser lets through, applied to an INVITE before answering.

pjsip accepts an INVITE with two Call-IDs, two conflicting Content-Lengths, a CSeq naming
another method, or a body shorter than its Content-Length (RFC 4475 multi01, mcl01, mismatch02;
RFC 3261 18.3). Answering those with 200 sets up a call on an ambiguous message: over TCP the
lengths disagree about where the next message starts, and proxies may have routed it by the
other value. RFC 3261 wants 400 Bad Request, and that is what the admission answers.
"""

from __future__ import annotations

# Headers that take exactly one value (RFC 3261 20.x), with their compact forms.
_SINGLE = {
    "call-id": "Call-ID",
    "i": "Call-ID",
    "cseq": "CSeq",
    "from": "From",
    "f": "From",
    "to": "To",
    "t": "To",
    "max-forwards": "Max-Forwards",
    "content-length": "Content-Length",
    "l": "Content-Length",
    "content-type": "Content-Type",
    "c": "Content-Type",
}


def request_problem(message: str) -> str | None:
    """Why ``message`` (a whole SIP request as received) must get 400, or None if it is sound."""
    head, sep, body = message.partition("\r\n\r\n")
    if not sep:
        head, sep, body = message.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    method = lines[0].split(" ", 1)[0] if lines and lines[0] else ""
    seen: dict[str, str] = {}
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:  # header folding (RFC 3261 7.3.1)
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        canonical = _SINGLE.get(key)
        if canonical is None:
            continue
        if canonical in seen:
            return f"more than one {canonical} header"
        seen[canonical] = value.strip()
    cseq = seen.get("CSeq", "").split()
    if len(cseq) == 2 and cseq[1] != method:
        return f"CSeq method {cseq[1][:20]!r} does not match the request method {method[:20]!r}"
    length = seen.get("Content-Length")
    if length is not None:
        if not length.isdigit():
            return f"Content-Length {length[:20]!r} is not a number"
        body_bytes = len(body.encode("utf-8", "surrogateescape"))
        if int(length) > body_bytes:
            return f"Content-Length {int(length)} is larger than the {body_bytes}-byte body"
    return None
