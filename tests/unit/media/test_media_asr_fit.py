"""The menu-answer fit check: how closely a grammar path's words fit, the floor it must meet to
be taken and the looser one that has it proposed for a read-back."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from flows.model import Settings
from media.asr.base import FinalResult, WordTiming
from media.asr.pocketsphinx_results import (
    CONFIRM_CONFIDENCE,
    CONFIRM_FLOOR,
    AcousticFit,
    FitFloor,
    fit_of,
    judged,
    verdict,
)


@dataclass
class _Seg:
    word: str
    start_frame: int
    end_frame: int
    ascore: float


class _Decoder:
    def __init__(self, segs: list[_Seg], hyp: object | None = "hyp") -> None:
        self._segs, self._hyp = segs, hyp

    def hyp(self) -> object | None:
        return self._hyp

    def seg(self) -> list[_Seg]:
        return self._segs


def test_fit_is_the_per_frame_score_of_the_answer_and_of_all_words_said() -> None:
    decoder = _Decoder(
        [
            _Seg("<sil>", 0, 29, math.exp(-0.5)),  # silence counts for nothing
            _Seg("c_please", 30, 49, math.exp(-0.02)),  # 20 frames, -1.0 per frame x 1000
            _Seg("check", 50, 59, math.exp(-0.03)),  # 10 frames, -3.0
            _Seg("balance(2)", 60, 69, math.exp(-0.05)),  # an alternate pronunciation, -5.0
        ]
    )
    fit = fit_of(decoder)
    assert fit is not None
    assert fit.key == pytest.approx(-4.0)  # (-0.03 - 0.05) / 20 frames x 1000
    assert fit.spoken == pytest.approx(-2.5)  # (-0.02 - 0.03 - 0.05) / 40 frames x 1000
    assert fit.key_share == pytest.approx(0.5)


def test_no_path_or_no_answer_word_has_no_fit() -> None:
    assert fit_of(_Decoder([], hyp=None)) is None
    assert fit_of(_Decoder([_Seg("c_please", 0, 9, 0.9), _Seg("<sil>", 10, 20, 0.9)])) is None


@pytest.mark.parametrize(
    ("fit", "taken"),
    [
        (AcousticFit(key=-3.0, spoken=-3.0, key_share=1.0), True),
        (AcousticFit(key=-4.5, spoken=-3.0, key_share=1.0), False),  # the answer is bent to fit
        (AcousticFit(key=-3.0, spoken=-4.5, key_share=0.5), False),  # the carriers are
        (AcousticFit(key=-2.0, spoken=-2.0, key_share=0.1), False),  # "i would like to" + "help"
        (None, False),
    ],
)
def test_the_floor_takes_only_close_fits_where_the_answer_is_a_fair_share(
    fit: AcousticFit | None, taken: bool
) -> None:
    assert FitFloor().accepts(fit) is taken


@pytest.mark.parametrize(
    ("fit", "decision"),
    [
        (AcousticFit(key=-3.0, spoken=-3.0, key_share=1.0), "accept"),
        (AcousticFit(key=-4.3, spoken=-3.5, key_share=1.0), "confirm"),  # the answer a bit bent
        (AcousticFit(key=-4.0, spoken=-3.7, key_share=0.9), "confirm"),  # the speech a bit bent
        (AcousticFit(key=-4.3, spoken=-3.7, key_share=0.35), "reject"),  # near, but mostly carriers
        (AcousticFit(key=-4.5, spoken=-3.0, key_share=1.0), "reject"),  # too far to propose
        (AcousticFit(key=-3.0, spoken=-3.9, key_share=1.0), "reject"),
        (None, "reject"),
    ],
)
def test_a_near_miss_is_proposed_and_a_far_one_rejected(fit: AcousticFit | None, decision: str) -> None:
    assert verdict(FitFloor(), CONFIRM_FLOOR, fit) == decision


def test_without_a_confirm_floor_a_near_miss_is_rejected() -> None:
    assert verdict(FitFloor(), None, AcousticFit(key=-4.3, spoken=-3.5, key_share=1.0)) == "reject"


def test_a_proposed_answer_lands_in_the_flows_read_back_band() -> None:
    """Above ``reject_below`` (else a reprompt), below ``confirm_below`` (else taken at once)."""
    settings = Settings()
    assert settings.reject_below <= CONFIRM_CONFIDENCE < settings.confirm_below


def test_the_verdict_shapes_the_final_the_flow_sees() -> None:
    words = (
        WordTiming("please", 0.1, 0.4, 0.9),
        WordTiming("lost", 0.4, 0.7, 0.8),
        WordTiming("card", 0.7, 1.0, 0.7),
    )
    heard = FinalResult("lost card", 0.7, words, in_grammar=True)
    assert judged(heard, "accept", 0.3) is heard
    proposed = judged(heard, "confirm", 0.3)
    assert (proposed.text, proposed.confidence, proposed.in_grammar) == ("lost card", 0.3, True)
    unsure = FinalResult("lost card", 0.2, words, in_grammar=True)
    assert judged(unsure, "confirm", 0.3).confidence == 0.2  # a cap, never a raise
    rejected = judged(heard, "reject", 0.3)
    assert (rejected.text, rejected.in_grammar) == ("please lost card", False)
