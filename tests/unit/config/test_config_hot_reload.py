"""The hot-reload contract shared by flows and alert rules, on a toy file format.

The format: a file of lines; ``include NAME`` reads another file of the same folder; every other
line must be a whole number. A version is the tuple of numbers; it is invalid (``Invalid``) if a
line is not a number or a file is missing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.hot_reload import HotReloaded, ReloadLog, file_stamps

LOG = ReloadLog(logging.getLogger("test.hot_reload"), "toy_rejected", "toy_reloaded", problem="toy_problem")


class Invalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Numbers:
    values: tuple[int, ...]
    sources: tuple[Path, ...]


@dataclass
class Toy:
    """The loader, counting its calls, and what ``on_load`` saw."""

    loads: int = 0
    loaded: list[Numbers] = field(default_factory=list)
    explode: bool = False

    def load(self, path: Path) -> Numbers:
        self.loads += 1
        if self.explode:
            raise RuntimeError("the disk is on fire")
        values: list[int] = []
        sources = [path]
        problems: list[str] = []
        try:
            lines = path.read_text().splitlines()
        except OSError:
            raise Invalid([f"{path}: cannot read"]) from None
        for number, line in enumerate(lines, 1):
            if line.startswith("include "):
                included = path.parent / line.removeprefix("include ")
                sources.append(included)
                try:
                    values += [int(v) for v in included.read_text().split()]
                except (OSError, ValueError):
                    problems.append(f"{included}: not readable as numbers")
            elif line.strip().lstrip("-").isdigit():
                values.append(int(line))
            else:
                problems.append(f"{path}:{number}:1: {line!r} is not a number")
        if problems:
            raise Invalid(problems)
        return Numbers(tuple(values), tuple(sources))

    def repository(self, path: Path) -> HotReloaded[Numbers, str]:
        return HotReloaded(
            path,
            self.load,
            invalid=Invalid,
            problems_of=lambda exc: exc.problems,
            stamp=lambda numbers: file_stamps(numbers.sources),
            log=LOG,
            describe=lambda numbers: {"count": len(numbers.values)},
            on_load=self.loaded.append,
        )


def write(path: Path, text: str, tick: int) -> None:
    """Write and set the mtime to ``tick`` seconds, so two writes in one clock tick still differ."""
    path.write_text(text)
    os.utime(path, ns=(tick * 1_000_000_000, tick * 1_000_000_000))


def started(tmp_path: Path, text: str = "1\n") -> tuple[Path, Toy, HotReloaded[Numbers, str]]:
    """``n.txt`` holding ``text`` (at tick 1), its loader and the repository in service."""
    path = tmp_path / "n.txt"
    write(path, text, 1)
    toy = Toy()
    return path, toy, toy.repository(path)


def test_an_unchanged_file_is_only_stated(tmp_path: Path) -> None:
    _, toy, repo = started(tmp_path, "1\n2\n")
    first = repo.current()
    assert first.values == (1, 2) and repo.value is first
    assert repo.current() is first and repo.current() is first
    assert toy.loads == 1 and repo.reloads == 0 and toy.loaded == [first]


def test_a_valid_edit_goes_into_service_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, toy, repo = started(tmp_path)
    old = repo.current()
    write(path, "1\n2\n3\n", 2)
    with caplog.at_level(logging.INFO, "test.hot_reload"):
        new = repo.current()
    assert new.values == (1, 2, 3) and new is not old and repo.reloads == 1 and repo.problems == []
    assert toy.loaded == [old, new], "on_load sees every version put into service"
    (record,) = caplog.records
    assert record.getMessage() == "toy_reloaded"
    assert record.fields == {"file": str(path), "count": 3}  # type: ignore[attr-defined]


def test_an_invalid_edit_keeps_the_old_version_until_the_file_changes_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, toy, repo = started(tmp_path)
    good = repo.current()
    write(path, "1\ntwo\nthree\n", 2)
    with caplog.at_level(logging.INFO, "test.hot_reload"):
        assert repo.current() is good
    assert repo.problems == [f"{path}:2:1: 'two' is not a number", f"{path}:3:1: 'three' is not a number"]
    rejected, *problems = caplog.records
    assert (rejected.getMessage(), rejected.levelno) == ("toy_rejected", logging.ERROR)
    assert rejected.fields == {"file": str(path), "problems": 2, "first": repo.problems[0]}  # type: ignore[attr-defined]
    assert [(r.getMessage(), r.fields["problem"]) for r in problems] == [  # type: ignore[attr-defined]
        ("toy_problem", problem) for problem in repo.problems
    ]
    loads = toy.loads
    assert repo.current() is good and toy.loads == loads, "a rejected edit is not read again"
    assert repo.reloads == 0 and toy.loaded == [good]
    write(path, "4\n", 3)
    assert repo.current().values == (4,) and repo.problems == [] and repo.reloads == 1


def test_an_included_file_is_watched_and_so_is_one_a_new_version_includes(tmp_path: Path) -> None:
    path, part, other = tmp_path / "n.txt", tmp_path / "part.txt", tmp_path / "other.txt"
    write(part, "5 6", 1)
    write(other, "7", 1)
    write(path, "1\ninclude part.txt\n", 1)
    repo = Toy().repository(path)
    assert repo.current().values == (1, 5, 6)
    write(part, "5 6 60", 2)
    assert repo.current().values == (1, 5, 6, 60), "an include's edit reloads the main file"
    write(path, "1\ninclude other.txt\n", 3)
    assert repo.current().values == (1, 7)
    write(other, "8", 4)
    assert repo.current().values == (1, 8), "the new version's include is stamped"
    write(part, "9", 5)
    assert repo.current().values == (1, 8) and repo.reloads == 3, "the old include is no longer"


def test_a_deleted_file_keeps_the_version_in_service_and_its_return_is_picked_up(tmp_path: Path) -> None:
    path, _, repo = started(tmp_path)
    good = repo.current()
    path.unlink()
    assert repo.current() is good and repo.problems == [f"{path}: cannot read"]
    write(path, "2\n", 2)
    assert repo.current().values == (2,) and repo.problems == []


def test_the_first_version_must_be_valid(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    write(path, "x\n", 1)
    with pytest.raises(Invalid, match="'x' is not a number"):
        Toy().repository(path)


def test_an_error_that_is_not_a_validation_error_propagates(tmp_path: Path) -> None:
    _, toy, repo = started(tmp_path)
    toy.explode = True
    with pytest.raises(RuntimeError, match="on fire"):
        repo.reload()
    assert repo.current().values == (1,) and repo.reloads == 0


def test_an_explicit_reload_restamps_so_the_next_poll_does_not_read_again(tmp_path: Path) -> None:
    path, toy, repo = started(tmp_path)
    write(path, "2\n", 2)
    assert repo.reload() == [] and repo.value.values == (2,)
    loads = toy.loads
    assert repo.current().values == (2,) and toy.loads == loads and repo.reloads == 1


def test_file_stamps_name_each_file_once_and_mark_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    write(path, "12", 7)
    missing = tmp_path / "gone.txt"
    assert file_stamps([path, missing, path]) == ((str(path), 7_000_000_000, 2), (str(missing), -1, -1))
