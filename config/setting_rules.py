"""What each setting may hold: choices, ranges, secrets. The loader (:mod:`config.settings`)
checks every value against these tables and names the file and line of a value that fails.
"""

from __future__ import annotations

CHOICES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("log_level",): ("debug", "info", "warning", "error"),
    ("media", "asr_engine"): ("pocketsphinx", "vosk"),
    ("mqtt", "on_unreachable"): ("buffer", "fail"),
    ("balancer", "front"): ("auto", "kamailio", "redirect"),
    ("balancer", "algorithm"): ("call_load", "round_robin"),
}
SECRETS = {("mqtt", "password"), ("dialer", "trunk_password"), ("intake", "token"), ("console", "secret_key")}
ENV_ONLY = {
    ("mqtt", "password"): "set IVR_MQTT__PASSWORD or mqtt.password_file instead",
    ("dialer", "trunk_password"): "set IVR_DIALER__TRUNK_PASSWORD instead",
    ("intake", "token"): "set IVR_INTAKE__TOKEN or intake.token_file (mode 0600) instead",
    ("console", "secret_key"): "set IVR_CONSOLE__SECRET_KEY (else a 0600 file under the data dir is used)",
}
LIST_CHOICES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("sip", "transports"): ("udp", "tcp"),
    ("sip", "codecs"): ("PCMU", "PCMA"),
}
MAY_BE_EMPTY = {("sip", "allowed_networks"), ("sip", "media_networks"), ("balancer", "nodes")}
NETWORK_LISTS = {("sip", "allowed_networks"), ("sip", "media_networks")}
RANGES: dict[tuple[str, ...], tuple[float, float]] = {
    ("sip", "port"): (0, 65535),
    ("sip", "rtp_port_start"): (1024, 65535),
    ("sip", "max_concurrent_calls"): (1, 500),
    ("sip", "engine_call_limit"): (1, 500),
    ("sip", "max_pending_invites"): (1, 1000),
    ("sip", "invites_per_source_per_s"): (0.1, 10000),
    ("sip", "invite_burst_per_source"): (1, 100000),
    ("sip", "retry_after_s"): (1, 3600),
    ("sip", "drain_timeout_s"): (0, 604800),
    ("sip", "gil_switch_interval_ms"): (0.05, 100),
    ("media", "vad_aggressiveness"): (0, 3),
    ("media", "speech_workers"): (-1, 64),
    ("media", "pre_roll_ms"): (0, 980),
    ("media", "barge_in_min_speech_ms"): (20, 2000),
    ("media", "barge_in_echo_margin_db"): (0, 40),
    ("media", "end_silence_ms"): (60, 5000),
    ("media", "end_silence_incomplete_ms"): (60, 10000),
    ("media", "end_silence_complete_ms"): (60, 5000),
    ("media", "end_silence_prepare_ms"): (20, 5000),
    ("mqtt", "port"): (1, 65535),
    ("database", "statement_timeout_s"): (0, 86400),
    ("database", "lock_timeout_s"): (0.1, 3600),
    ("dialer", "calls_per_second"): (0.01, 1000),
    ("dialer", "max_concurrent_calls"): (1, 10000),
    ("dialer", "sip_port"): (0, 65535),
    ("dialer", "trunk_lines"): (0, 10000),
    ("dialer", "expected_call_s"): (0, 86400),
    ("transfer", "ring_timeout_s"): (1, 600),
    ("intake", "http_port"): (0, 65535),
    ("intake", "max_body_bytes"): (256, 1_048_576),
    ("intake", "requests_per_s"): (0.1, 10000),
    ("intake", "burst"): (1, 100000),
    ("balancer", "port"): (1, 65535),
    ("balancer", "probe_interval_s"): (1, 3600),
    ("balancer", "failover_timeout_s"): (0.5, 120),
    ("console", "port"): (1, 65535),
    ("console", "session_hours"): (0.1, 720),
    ("alerts", "baseline_utterances"): (1, 10),
    ("supervision", "pin_tries"): (1, 10),
    ("supervision", "pin_timeout_s"): (2, 60),
}
