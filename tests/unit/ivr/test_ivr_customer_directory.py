from __future__ import annotations

from pathlib import Path

import pytest

from ivr.customer_directory import CustomerDirectory, DirectoryError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_lookup_finds_the_account_however_the_number_is_written(tmp_path: Path) -> None:
    directory = CustomerDirectory.load(write(tmp_path, "phone,tier,pin\n+1 (202) 555-0143,premium,4321\n"))
    account = directory.lookup("12025550143")
    assert account["found"] is True and account["tier"] == "premium" and account["pin"] == "4321"
    assert directory.lookup("+12025550144") == {"found": False}
    assert directory.lookup("anonymous") == {"found": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("number,tier\n1,x\n", "customers.csv:1: header must have a 'phone' column"),
        (
            "phone,tier\n+12025550143,a\nnot a number,b\n",
            "customers.csv:3: phone: 'not a number' is not a valid number",
        ),
        ("phone\n+12025550143\n2025550143\n", "customers.csv:3: phone: duplicate of an earlier row"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DirectoryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CustomerDirectory.load(write(tmp_path, text))
