"""Configuring the process's one pjsua2 Endpoint: media clock, transports and codecs.

Every choice here serves the recordings and the media pipeline: 8 kHz mono 20 ms frames end
to end, RTP that keeps flowing in silence, and no invented audio when packets are lost.
"""

from __future__ import annotations

import logging
from typing import Any

import pjsua2 as pj

from config.settings import SipSettings
from media.frames import FRAME_MS, SAMPLE_RATE

_log = logging.getLogger("ivr.sip")
CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}


def configure_endpoint(ep: Any, s: SipSettings, max_calls: int) -> int:
    """libInit, transports, libStart, null sound device and codec settings on a created
    Endpoint (run on the agent thread). Returns the SIP port actually bound."""
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = max_calls
    cfg.uaConfig.userAgent = s.user_agent
    cfg.logConfig.level = 2
    cfg.logConfig.consoleLevel = 1 if _log.isEnabledFor(logging.DEBUG) else 0
    cfg.medConfig.clockRate = SAMPLE_RATE
    cfg.medConfig.sndClockRate = SAMPLE_RATE
    cfg.medConfig.channelCount = 1
    cfg.medConfig.audioFramePtime = FRAME_MS
    cfg.medConfig.ptime = FRAME_MS
    cfg.medConfig.noVad = True  # keep RTP flowing during silence: recordings stay aligned
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.maxMediaPorts = 2 * max_calls + 8
    ep.libInit(cfg)
    port = s.port
    for transport in s.transports:
        tc = pj.TransportConfig()
        tc.port = port
        tc.boundAddress = s.bind_address
        if s.public_address:
            tc.publicAddress = s.public_address
        kind = pj.PJSIP_TRANSPORT_UDP if transport == "udp" else pj.PJSIP_TRANSPORT_TCP
        transport_id = ep.transportCreate(kind, tc)
        if port == 0:  # an ephemeral port (outbound-only agents): every transport shares it
            port = int(str(ep.transportGetInfo(transport_id).localName).rsplit(":", 1)[1])
    ep.libStart()
    ep.audDevManager().setNullDev()
    _set_codecs(ep, [CODEC_IDS[name] for name in s.codecs])
    return port


def account_config(s: SipSettings, id_uri: str, username: str = "", password: str = "") -> Any:
    """The ``AccountConfig`` of the engine's identity (and of the trunk's, with credentials)."""
    ac = pj.AccountConfig()
    ac.idUri = id_uri
    ac.mediaConfig.transportConfig.port = s.rtp_port_start
    ac.mediaConfig.transportConfig.portRange = s.rtp_port_range
    ac.mediaConfig.transportConfig.boundAddress = s.bind_address
    if s.public_address:
        ac.mediaConfig.transportConfig.publicAddress = s.public_address
    if username:
        ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", username, 0, password))
    return ac


def _set_codecs(ep: Any, wanted: list[str]) -> None:
    for codec in ep.codecEnum2():
        prio = 255 - wanted.index(codec.codecId) if codec.codecId in wanted else 0
        ep.codecSetPriority(codec.codecId, prio)
    for codec_id in wanted:
        # Packet-loss concealment invents speech-like audio when RTP stops; VAD and ASR would
        # hear it as the caller talking (false barge-in). Lost packets become silence instead.
        param = ep.codecGetParam(codec_id)
        param.setting.plc = False
        param.setting.vad = False
        ep.codecSetParam(codec_id, param)
