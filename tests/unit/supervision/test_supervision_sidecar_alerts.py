"""Alerts are kept with the call: in the sidecar while it records and once sealed, read back
strictly, shown in the catalog's JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recordings import CallMetadata, DualTrackRecorder
from recordings.catalog import Catalog
from recordings.errors import SidecarError
from recordings.sidecar import AlertRecord, read_sidecar

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ALERT = AlertRecord("legal_threat", "phrase", "high", 8.4256, "said 'lawyer'", {"offer_agent": True})


def test_an_alert_is_in_the_sidecar_at_once_and_after_the_seal(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "c1", CallMetadata("inbound", "+4915112345678", "100", T0))
    rec.add_alert(ALERT)
    live = json.loads(rec.sidecar_path.read_text())
    assert live["alerts"] == [
        {
            "rule": "legal_threat",
            "kind": "phrase",
            "severity": "high",
            "at_s": 8.426,
            "evidence": "said 'lawyer'",
            "action": {"offer_agent": True},
        }
    ], "checkpointed: a crash loses no alert"
    info = rec.close(T0 + timedelta(seconds=20), "completed")
    sealed = read_sidecar(info.sidecar_path)
    assert sealed.alerts == (
        AlertRecord("legal_threat", "phrase", "high", 8.426, "said 'lawyer'", {"offer_agent": True}),
    )
    assert sealed.alerts[0].describe() == "[   8.43] ALERT high legal_threat: said 'lawyer'"
    assert Catalog(tmp_path).find("c1").to_json()["alerts"][0]["rule"] == "legal_threat"


def test_a_call_without_alerts_keeps_its_sidecar_as_before(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "c2", CallMetadata("inbound", "1", "2", T0))
    info = rec.close(T0 + timedelta(seconds=1))
    assert "alerts" not in json.loads(info.sidecar_path.read_text())
    assert read_sidecar(info.sidecar_path).alerts == ()


def test_a_broken_alert_in_a_sidecar_names_the_field(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "c3", CallMetadata("inbound", "1", "2", T0))
    rec.add_alert(ALERT)
    info = rec.close(T0 + timedelta(seconds=1))
    raw = json.loads(info.sidecar_path.read_text())
    raw["alerts"][0]["severity"] = "apocalyptic"
    info.sidecar_path.write_text(json.dumps(raw))
    with pytest.raises(SidecarError, match=r"alerts\[0\]\.severity: 'apocalyptic' is not one of"):
        read_sidecar(info.sidecar_path)
