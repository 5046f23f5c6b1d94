"""Cutting prompts at pauses, and finding a template's fixed pieces."""

from __future__ import annotations

import pytest

from media.speech_chunks import fixed_chunks, speech_chunks


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("", []),
        ("   ", []),
        ("Hello there", ["Hello there"]),
        ("I heard: yes please.", ["I heard:", "yes please."]),
        (
            "Welcome.  Say  balance; or agent!  Goodbye?",
            ["Welcome.", "Say balance;", "or agent!", "Goodbye?"],
        ),
        ("Your balance is 1,234.56 dollars.", ["Your balance is 1,234.56 dollars."]),  # no space: no cut
        ("Time 10:30 now", ["Time 10:30 now"]),
    ],
)
def test_prompts_are_cut_where_a_speaker_pauses(text: str, pieces: list[str]) -> None:
    assert speech_chunks(text) == pieces
    assert " ".join(pieces) == " ".join(text.split())


def test_a_templates_fixed_pieces_are_the_pieces_every_rendering_starts() -> None:
    template = "I heard: {{ heard }}. Is that right? {% if x %}Yes.{% endif %}"
    assert fixed_chunks(template) == ["I heard:", "Is that right?"]
    rendered = "I heard: two tickets to Boston. Is that right?"
    assert set(fixed_chunks(template)) <= set(speech_chunks(rendered))


def test_a_template_without_cuts_has_no_fixed_pieces() -> None:
    assert fixed_chunks("Your balance is {{ amount }} dollars") == []
    assert fixed_chunks("Plain text. No template.") == ["Plain text.", "No template."]
