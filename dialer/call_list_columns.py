"""The call-list columns: one table that the importer, ``campaign import --help`` and
docs/campaigns.md all follow (a test checks the docs name every column here)."""

from __future__ import annotations

from dataclasses import dataclass

from dialer.scheduler import CampaignKind

ALL_KINDS = tuple(kind.value for kind in CampaignKind)


@dataclass(frozen=True)
class Column:
    name: str
    required_for: tuple[str, ...]
    """Campaign kinds whose import rejects a row without it (empty: optional)."""
    format: str
    example: str
    meaning: str


COLUMNS = (
    Column(
        "phone",
        ALL_KINDS,
        "a number, E.164 (+8613812345678) or national with --region",
        "+86 138 1234 5678",
        "who to call; spaces, dashes and brackets are fine; one row per number",
    ),
    Column(
        "cooling_off_end",
        (CampaignKind.COMPLIANCE_CALLBACK.value,),
        "ISO 8601 date-time; without an offset it is the callee's local time",
        "2025-03-01T14:30:00+08:00",
        "when the cooling-off period ends: the callback window opens then and closes "
        "--window-hours later (the deadline); a row whose deadline has passed is rejected",
    ),
    Column(
        "first_name",
        (),
        "text",
        "Li",
        "spoken by the flows ({{ contact.first_name }})",
    ),
    Column("last_name", (), "text", "Wei", "spoken by the flows ({{ contact.last_name }})"),
    Column(
        "timezone",
        (),
        "IANA time zone name",
        "Asia/Shanghai",
        "the callee's clock for calling hours; default: the number's zone, required when "
        "the number's range spans zones with different clocks (the row is rejected otherwise)",
    ),
    Column(
        "priority",
        (),
        "integer, -1000000 to 1000000",
        "5",
        "higher is called first among contacts with the same deadline (default 0)",
    ),
)
"""The columns the importer reads itself; every other column becomes a contact field."""

STANDARD_COLUMNS = tuple(column.name for column in COLUMNS)

FLOW_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    CampaignKind.COMPLIANCE_CALLBACK.value: (
        ("product", "Fund A", "what was bought (flows/library/compliance_callback.yaml)"),
        ("amount", "10000", "how much, a number (spoken as money)"),
        ("purchase_date", "2025-02-27", "YYYY-MM-DD"),
        ("date_of_birth", "1980-07-04", "YYYY-MM-DD; the callee's answer is checked against it"),
        ("id_last4", "1234", "last 4 digits of the ID number, asked when the birth date fails"),
    ),
    CampaignKind.RETENTION.value: (
        (
            "topic",
            "your unfinished loan application",
            "what the call is about (flows/library/retention.yaml)",
        ),
    ),
}
"""Contact fields the shipped flow of each kind reads: optional for the import, but without
them that flow cannot verify the callee or say what the call is about."""


def required_columns(kind: str) -> list[str]:
    return [column.name for column in COLUMNS if kind in column.required_for]


def help_epilog() -> str:
    """The column reference printed by ``campaign import --help``."""
    lines = [
        "call list: a UTF-8 CSV file with a header row; rename other systems' columns with",
        "--map NEW=OLD (e.g. --map phone=Mobile). Columns:",
    ]
    for column in COLUMNS:
        required = (
            "required"
            if column.required_for == ALL_KINDS
            else "required for " + ", ".join(column.required_for)
            if column.required_for
            else "optional"
        )
        lines.append(f"  {column.name} ({required}): {column.format}, e.g. {column.example}")
        lines.append(f"      {column.meaning}")
    lines.append("  any other column: a contact field the flow reads as {{ contact.NAME }}; the shipped")
    lines.append("  flows read:")
    for kind, fields in FLOW_FIELDS.items():
        lines.append(f"    {kind}: " + ", ".join(name for name, _, _ in fields))
    lines += [
        "example (compliance_callback):",
        "  phone,first_name,last_name,cooling_off_end,product,amount,purchase_date,date_of_birth,id_last4",
        "  +8613812345678,Li,Wei,2025-03-01T14:30:00+08:00,Fund A,10000,2025-02-27,1980-07-04,1234",
        "Rejected rows are printed as FILE:ROW: field: reason (the header is row 1) and written",
        "to FILE.rejects.csv; an import that stores no row creates no campaign.",
        "Full reference: docs/campaigns.md",
    ]
    return "\n".join(lines)
