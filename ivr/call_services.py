"""What every call in the process shares: the flow in service, TTS, the ASR model, the event
publisher and the worker threads. Expensive loads happen once here; per-call objects are cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from config.logs import log_event
from config.settings import Settings
from flows import Flow, FlowRepository
from ivr.customer_directory import CustomerDirectory
from ivr.event_publisher import EventPublisher, create_publisher
from media.asr.base import AsrEngine
from media.asr.factory import create_asr_engine
from media.asr.remote import RemoteAsrEngine
from media.speech_chunks import fixed_chunks, speech_chunks
from media.speech_pool import SpeechPool, connect, default_workers
from media.tts import TextToSpeech, prompt_frames
from recordings.qa_batch import DEFAULT_RULES_DIR
from recordings.qa_rules import RuleCatalog
from recordings.qa_rules_loader import load_catalog
from supervision.alert_rules import check_actions
from supervision.alerts import AlertEngine
from supervision.emotion import EmotionTracker
from supervision.rule_repository import AlertRulesRepository

_log = logging.getLogger("ivr.services")
_FLOW_POLL_S = 1.0


@dataclass
class CallServices:
    settings: Settings
    flows: FlowRepository
    tts: TextToSpeech
    asr: AsrEngine
    publisher: EventPublisher
    executor: ThreadPoolExecutor
    directory: CustomerDirectory
    asr_executor: ThreadPoolExecutor = field(default_factory=lambda: _asr_threads(4))
    """Threads that wait for recognizer answers, one per call at most: apart from
    :attr:`executor`, so a prompt never waits to be rendered behind calls waiting for a busy
    speech worker (a waiting thread holds no GIL, so many are cheap)."""
    qa_rules: RuleCatalog | None = None
    """The QA rules every call is checked against when it ends (``flows/library/qa``)."""
    speech_pool: SpeechPool | None = None
    """The speech service this process started (None: another process's, or in-process decoding)."""
    alert_rules: AlertRulesRepository | None = None
    """The live supervision alert rules (``alerts.rules_file``), hot-reloaded; None: no alerts."""

    @classmethod
    def load(cls, settings: Settings, prerender: bool = True) -> CallServices:
        """Load the flow, the ASR model and TTS once, and (for ``serve``) pre-render the flow's prompts."""
        flows = FlowRepository(settings.flow_path)
        asr, pool = speech_engine(settings)
        tts = TextToSpeech(
            settings.tts_cache_path,
            default_voice=settings.media.tts_voice,
            default_rate=settings.media.tts_rate,
        )
        services = cls(
            settings=settings,
            flows=flows,
            tts=tts,
            asr=asr,
            publisher=create_publisher(settings.mqtt),
            executor=ThreadPoolExecutor(
                max_workers=max(4, 2 * (os.cpu_count() or 2)), thread_name_prefix="ivr-work"
            ),
            directory=(
                CustomerDirectory.load(Path(settings.directory.path), settings.directory.region)
                if settings.directory.path
                else CustomerDirectory.empty()
            ),
            asr_executor=_asr_threads(max(settings.sip.max_concurrent_calls, settings.sip.engine_call_limit)),
        )
        services.speech_pool = pool
        services.qa_rules = load_catalog([DEFAULT_RULES_DIR])
        rules_path = settings.alert_rules_path
        services.alert_rules = AlertRulesRepository(rules_path) if rules_path else None
        services.check_alert_actions(flows.flow)
        if prerender:
            services.prerender(flows.flow)
        return services

    def prerender(self, flow: Flow) -> int:
        """Render every fixed piece of ``flow``'s prompts so callers do not wait for TTS.

        Prompts are played piece by piece (:mod:`media.speech_chunks`): a static prompt's
        pieces and a template's fixed pieces ("I heard:") all come from the cache; only a
        piece carrying a value is synthesized during a call, while the pieces before it play.
        """
        voice, rate = self.voice_for(flow)
        pieces = [piece for text in flow.static_prompts() for piece in speech_chunks(text)]
        pieces += [piece for text in flow.templated_prompts() for piece in fixed_chunks(text)]
        rendered: int = self.tts.prerender([(piece, voice, rate) for piece in dict.fromkeys(pieces)])
        log_event("flow.prompts_rendered", logger=_log, flow=flow.metadata.name, prompts=rendered)
        return rendered

    def alert_engine(self, flow: Flow) -> tuple[AlertEngine | None, EmotionTracker | None]:
        """A new call's alert engine over the rules in service (reloaded if the file changed),
        and its emotion tracker when the rules have an emotion rule and ``alerts.emotion`` is on."""
        if self.alert_rules is None:
            return None, None
        engine = AlertEngine(self.alert_rules.current(), flow.metadata.name)
        alerts = self.settings.alerts
        wants_emotion = alerts.emotion and any(rule.kind == "emotion" for rule in engine.rules)
        return engine, EmotionTracker(alerts.baseline_utterances) if wants_emotion else None

    def check_alert_actions(self, flow: Flow) -> None:
        """Log rules whose ``goto`` names a step ``flow`` lacks (the call skips such an action)."""
        if self.alert_rules is None:
            return
        for problem in check_actions(self.alert_rules.rules, flow.metadata.name, set(flow.steps)):
            log_event("alert_rule_action_invalid", logging.WARNING, _log, problem=problem)

    def voice_for(self, flow: Flow) -> tuple[str, int]:
        meta = flow.metadata
        return (meta.voice or self.settings.media.tts_voice, meta.rate or self.settings.media.tts_rate)

    def render_frames(self, text: str, voice: str, rate: int) -> list[bytes]:
        """TTS audio for ``text`` as 20 ms little-endian frames (blocking: run in the executor)."""
        return prompt_frames(self.tts.render(text, voice=voice, rate=rate))

    async def watch_flows(self, stop: asyncio.Event) -> None:
        """Hot reload: new calls get a changed flow once it validates; its prompts are rendered."""
        loop = asyncio.get_running_loop()
        in_service = self.flows.flow
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _FLOW_POLL_S)
            flow = await loop.run_in_executor(self.executor, self.flows.current)
            if flow is not in_service:
                in_service = flow
                log_event(
                    "flow.reloaded", logger=_log, flow=flow.metadata.name, version=flow.metadata.version
                )
                await loop.run_in_executor(self.executor, self.prerender, flow)
                self.check_alert_actions(flow)

    def start(self) -> None:
        """Start background delivery (needs the running event loop)."""
        self.publisher.start()

    async def aclose(self) -> None:
        await self.publisher.aclose()
        await asyncio.to_thread(self.tts.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.asr_executor.shutdown(wait=False, cancel_futures=True)
        if isinstance(self.asr, RemoteAsrEngine):
            self.asr.close()
        if self.speech_pool is not None:
            await asyncio.to_thread(self.speech_pool.stop)


def speech_engine(settings: Settings) -> tuple[AsrEngine, SpeechPool | None]:
    """The recognizer calls use: the pool another process runs (``media.speech_service_dir``),
    a pool started here (``media.speech_workers``: -1 one per core, N), or, with 0, a decoder
    inside this process."""
    media = settings.media
    if media.speech_service_dir:
        return connect(media.speech_service_dir), None
    if media.speech_workers == 0:
        return create_asr_engine(media), None
    workers = default_workers() if media.speech_workers < 0 else media.speech_workers
    pool = SpeechPool(media, workers, settings.log_level)
    try:
        pool.start()
    except BaseException:
        pool.stop()
        raise
    return pool.engine(), pool


def _asr_threads(calls: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(4, calls), thread_name_prefix="ivr-asr")
