from __future__ import annotations

from ivr.prompt_queue import PromptEnded, PromptQueue, PromptStarted


def kinds(events: list[PromptStarted | PromptEnded]) -> list[tuple[str, int]]:
    return [(type(e).__name__, e.prompt.id) for e in events]


def test_prompts_start_and_end_on_the_frames_that_left() -> None:
    q = PromptQueue()
    a = q.add("hello", True, 2)
    b = q.add("how can I help", True, 1)
    assert kinds(q.frame_sent(None, False, 0.0)) == []
    assert kinds(q.frame_sent(a.id, False, 0.02)) == [("PromptStarted", a.id)]
    assert kinds(q.frame_sent(a.id, True, 0.04)) == [("PromptEnded", a.id)]
    assert (a.start_s, a.end_s) == (0.02, 0.06)
    assert kinds(q.frame_sent(b.id, True, 0.06)) == [("PromptStarted", b.id), ("PromptEnded", b.id)]
    assert not q.busy


def test_barge_in_ends_the_playing_and_the_queued_prompts_as_interrupted() -> None:
    q = PromptQueue()
    a = q.add("one", True, 10)
    b = q.add("two", True, 10)
    q.frame_sent(a.id, False, 1.0)
    events = q.interrupt(1.2)
    assert kinds(events) == [("PromptEnded", a.id), ("PromptStarted", b.id), ("PromptEnded", b.id)]
    assert a.interrupted and b.interrupted and a.end_s == 1.2
    assert not q.busy


def test_a_prompt_with_no_audio_finishes_without_waiting_for_frames() -> None:
    q = PromptQueue()
    empty = q.add("", True, 0)
    after = q.add("next", True, 1)
    assert kinds(q.flush_empty(0.5)) == [("PromptStarted", empty.id), ("PromptEnded", empty.id)]
    assert q.current is after
