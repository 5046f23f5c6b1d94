"""The prompt cache on a real disk: atomic entries, damaged files, concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from config.errors import MediaError
from media.tts_cache import TtsCache, cache_key

pytestmark = pytest.mark.component


def test_keys_separate_every_part() -> None:
    assert cache_key("v1", "en-us", "165", "hello") != cache_key("v1", "en-us", "16", "5hello")
    assert cache_key("a", "bc") != cache_key("ab", "c")
    assert cache_key("v1", "en-us", "165", "hello") == cache_key("v1", "en-us", "165", "hello")


def test_put_then_get_from_a_new_instance(tmp_path: Path) -> None:
    audio = (np.arange(800) % 200 - 100).astype(np.int16)
    key = cache_key("v1", "en-us", "165", "hello")
    stored = TtsCache(tmp_path).put(key, audio)
    assert not stored.flags.writeable
    fresh = TtsCache(tmp_path)
    again = fresh.get(key)
    assert again is not None and np.array_equal(again, audio)
    assert (fresh.hits, fresh.misses) == (1, 0)
    assert fresh.get(cache_key("v1", "en-us", "165", "other")) is None and fresh.misses == 1
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary files left behind


def test_peek_answers_from_memory_only(tmp_path: Path) -> None:
    audio = np.arange(160, dtype=np.int16)
    key = cache_key("v1", "en-us", "165", "hello")
    cache = TtsCache(tmp_path)
    assert cache.peek(key) is None
    cache.put(key, audio)
    peeked = cache.peek(key)
    assert peeked is not None and np.array_equal(peeked, audio) and not peeked.flags.writeable
    fresh = TtsCache(tmp_path)  # on disk, not yet in this instance's memory
    assert fresh.peek(key) is None and (fresh.hits, fresh.misses) == (0, 0)
    assert fresh.get(key) is not None
    assert fresh.peek(key) is not None
    assert TtsCache(tmp_path, memory_bytes=0).peek(key) is None  # nothing is kept in memory


def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    cache = TtsCache(tmp_path, memory_bytes=0)
    key = cache_key("v1", "en-us", "165", "hello")
    cache.put(key, np.ones(160, np.int16))
    cache.path(key).write_bytes(b"RIFF\x00\x00garbage")
    assert cache.get(key) is None
    cache.put(key, np.full(160, 7, np.int16))
    got = cache.get(key)
    assert got is not None and int(got[0]) == 7


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    key = cache_key("v1", "en-us", "165", "race")
    audio = np.arange(16000, dtype=np.int16)
    caches = [TtsCache(tmp_path, memory_bytes=0) for _ in range(8)]
    threads = [threading.Thread(target=c.put, args=(key, audio)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = TtsCache(tmp_path).get(key)
    assert got is not None and np.array_equal(got, audio)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{key}.wav"]


def test_bad_audio_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="1-D int16"):
        TtsCache(tmp_path).put(cache_key("x"), np.zeros(10, np.float32))
