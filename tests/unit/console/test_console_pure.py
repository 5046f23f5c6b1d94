"""The console's pure helpers: the new-campaign form, the SVG charts, safe redirects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from console.account_pages import safe_next
from console.campaign_form import FormError, parse_import_form
from console.charts import Series, nice_top, stacked_bars
from console.wallboard import BoardCache, outcome_label, outcome_series
from console.wallboard_pages import sse_message

FLOWS = ("flows/library/compliance_callback.yaml",)
GOOD = {"name": "June callbacks", "kind": "compliance_callback", "flow": FLOWS[0], "hours": "09:00-20:00"}


def test_good_form_becomes_the_spec_campaign_import_would_build() -> None:
    wanted = parse_import_form({**GOOD, "map": "phone=Mobile, first_name=Given", "region": "cn"}, FLOWS)
    assert wanted.name == "June callbacks"
    assert wanted.spec.region == "CN"
    assert wanted.spec.calling_hours["default"] == "09:00-20:00"
    assert wanted.spec.retry["outcomes"] == {"no_decision": "30m"}
    assert wanted.column_map == {"Mobile": "phone", "Given": "first_name"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "../etc"}, "name"),
        ({"kind": "spam"}, "kind"),
        ({"flow": "/etc/passwd"}, "flow"),
        ({"hours": "9-5"}, "hours"),
        ({"hours": "25:00-26:00"}, "campaign"),
        ({"window_hours": "lots"}, "window_hours"),
        ({"max_attempts": "0"}, "max_attempts"),
        ({"starts": "2025-06-01T09:00"}, "starts"),
        ({"map": "phone"}, "map"),
        ({"region": "China"}, "region"),
    ],
)
def test_bad_field_is_named(change: dict[str, str], field: str) -> None:
    with pytest.raises(FormError) as info:
        parse_import_form({**GOOD, **change}, FLOWS)
    assert info.value.field == field


def test_nice_axis_tops() -> None:
    assert [nice_top(v) for v in (1, 2, 3, 6, 11, 99, 101, 4000)] == [1, 2, 5, 10, 20, 100, 200, 5000]


def test_chart_is_valid_svg_with_escaped_labels_and_one_rect_per_nonzero_value() -> None:
    svg = stacked_bars("Outcomes <per hour>", ["09h", "10h"], [Series("a&b", [3, 0]), Series("c", [1, 2])])
    root = ElementTree.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{*}title") is not None]
    assert len(bars) == 3
    assert "a&amp;b" in svg and "&lt;per hour&gt;" in svg
    tallest = max(float(r.get("height", 0)) for r in bars)
    assert tallest > 0


def test_empty_chart_says_so_and_mismatched_series_are_refused() -> None:
    assert "no attempts yet" in stacked_bars("x", ["09h"], [Series("a", [0])])
    with pytest.raises(ValueError, match="series 'a' has 1 values for 2 labels"):
        stacked_bars("x", ["09h", "10h"], [Series("a", [1])])


def test_outcomes_per_hour_keep_the_most_common_and_sum_the_rest() -> None:
    hour = datetime(2025, 1, 1, 9, tzinfo=UTC)
    hours = [hour, hour + timedelta(hours=1)]
    rows = [(hour, f"o{i}", 8 - i) for i in range(8)] + [(hour + timedelta(minutes=70), "o0", 1)]
    series = {s.name: list(s.values) for s in outcome_series(rows, hours)}
    assert series["o0"] == [8, 1]
    assert series["other"] == [2 + 1, 0]
    assert len(series) == 7
    assert outcome_label(None, None, ended=False) == "in call"
    assert outcome_label("busy", None, ended=True) == "busy"
    assert outcome_label("answered", "confirmed", ended=True) == "confirmed"


def test_login_redirect_stays_on_this_site() -> None:
    assert safe_next("/campaigns/x?y=1") == "/campaigns/x?y=1"
    for hostile in ("//evil.example", "https://evil.example/", "/\\evil", "", None, "javascript:x"):
        assert safe_next(hostile) == "/"


def test_sse_message_puts_each_line_in_its_own_data_field() -> None:
    assert sse_message("board", "<p>\n1</p>") == "event: board\ndata: <p>\ndata: 1</p>\n\n"


def test_board_cache_shares_one_reading_while_fresh_and_backs_off_when_slow() -> None:
    now = [0.0]
    reads: list[float] = []

    def compute(took: float) -> Callable[[], int]:
        def read() -> int:
            reads.append(now[0])
            now[0] += took
            return len(reads)

        return read

    cache = BoardCache[int](refresh_s=2.0)
    assert cache.get("june", compute(0.1), clock=lambda: now[0]) == 1
    now[0] = 1.5
    assert cache.get("june", compute(0.1), clock=lambda: now[0]) == 1  # fresh: shared
    now[0] = 2.5
    assert cache.get("june", compute(5.0), clock=lambda: now[0]) == 2  # stale: read again, slowly
    now[0] = 12.0  # 2 s + the 5 s the last reading took have not passed since it finished at 7.5
    assert cache.get("june", compute(0.1), clock=lambda: now[0]) == 2
    now[0] = 15.0
    assert cache.get("june", compute(0.1), clock=lambda: now[0]) == 3
    cache.forget("june")
    assert cache.get("june", compute(0.1), clock=lambda: now[0]) == 4
    assert BoardCache[int](0.0).get("x", compute(0.1), clock=lambda: now[0]) == 5  # off: always reads
