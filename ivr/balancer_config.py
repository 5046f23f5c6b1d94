"""The Kamailio configuration of the balancer, rendered from the engine's settings.

Pure: settings and node addresses in, two texts out (``kamailio.cfg`` and the dispatcher list),
so what Kamailio will do is tested without running it. The templates live in
``config/kamailio/``. Every value that reaches them is checked first: a node address or path
with a quote, newline or other stray character would otherwise change the routing script
itself, so it is refused with an error that names the value and where it came from.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2

from config.errors import ConfigError
from config.settings import PROJECT_ROOT, Settings

TEMPLATE_DIR = PROJECT_ROOT / "config" / "kamailio"
ALGORITHMS = {"call_load": 10, "round_robin": 4}
"""Kamailio dispatcher algorithm numbers: 10 = fewest live calls (with ``maxload``), 4 = in turn."""
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@:-]+$")
_CHILDREN = 4
_CALL_EXPIRE_MARGIN_S = 60


@dataclass(frozen=True, slots=True)
class Node:
    """One engine node: where its ``serve`` listens for SIP."""

    host: str
    port: int

    @property
    def uri_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        return f"{self.uri_host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BalancerPlan:
    """Everything the rendered configuration depends on, checked."""

    nodes: tuple[Node, ...]
    listen: Node
    public_address: str
    algorithm: str
    probe_interval_s: int
    failover_timeout_s: float
    max_calls_per_node: int
    retry_after_s: int
    call_expire_s: int


@dataclass(frozen=True, slots=True)
class RenderedConfig:
    cfg: str
    """``kamailio.cfg``."""
    dispatcher_list: str
    """The dispatcher list file the cfg names."""


def check_host(host: str, where: str) -> str:
    """An IP address or a DNS name, nothing else (no quotes, spaces, newlines, URI parts)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _HOSTNAME.match(bare):
        raise ConfigError(f"{where}: {host!r} is not an IP address or host name")
    return bare


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_node(text: str, where: str) -> Node:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a :class:`Node`; a located error otherwise."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{where}: {text!r} is not HOST:PORT")
    if ":" in host and not host.startswith("[") and _is_ip(host):
        raise ConfigError(f"{where}: {text!r}: write an IPv6 address in brackets, as [::1]:5060")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{where}: {text!r}: the port must be a number from 1 to 65535")
    return Node(check_host(host, where), int(port_text))


def plan_from_settings(
    settings: Settings, extra_nodes: tuple[str, ...] = (), listen: str | None = None
) -> BalancerPlan:
    """The plan for ``balancer.*`` settings plus ``--node``/``--listen`` from the command line."""
    b = settings.balancer
    nodes = [parse_node(text, "balancer.nodes") for text in b.nodes]
    nodes += [parse_node(text, "--node") for text in extra_nodes]
    if not nodes:
        raise ConfigError("no engine nodes: give --node HOST:PORT or set balancer.nodes")
    seen: set[Node] = set()
    for node in nodes:
        if node in seen:
            raise ConfigError(f"--node/balancer.nodes: {node} is listed twice")
        seen.add(node)
    if listen is None:
        listen_node = Node(check_host(b.bind_address, "balancer.bind_address"), b.port)
    else:
        listen_node = parse_node(listen, "--listen")
    if listen_node in seen:
        raise ConfigError(f"--listen: {listen_node} is also an engine node")
    public = check_host(b.public_address, "balancer.public_address") if b.public_address else ""
    if b.algorithm not in ALGORITHMS:
        raise ConfigError(f"balancer.algorithm: {b.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    if not 1 <= b.probe_interval_s <= 3600:
        raise ConfigError(f"balancer.probe_interval_s: {b.probe_interval_s!r} is outside 1..3600")
    if not (math.isfinite(b.failover_timeout_s) and b.failover_timeout_s > 0):
        raise ConfigError(f"balancer.failover_timeout_s: {b.failover_timeout_s!r} is not a positive number")
    return BalancerPlan(
        nodes=tuple(nodes),
        listen=listen_node,
        public_address=public,
        algorithm=b.algorithm,
        probe_interval_s=int(b.probe_interval_s),
        failover_timeout_s=float(b.failover_timeout_s),
        max_calls_per_node=min(settings.sip.max_concurrent_calls, settings.sip.engine_call_limit),
        retry_after_s=settings.sip.retry_after_s,
        call_expire_s=int(settings.sip.max_call_duration_s) + _CALL_EXPIRE_MARGIN_S,
    )


def check_path(path: Path, what: str) -> str:
    """A path Kamailio's config quotes: no quote, backslash, space or control character."""
    text = str(path)
    if not path.is_absolute() or not _SAFE_PATH.match(text):
        raise ConfigError(
            f"{what} {text!r}: use an absolute path of letters, digits and . _ / + @ : - only"
            " (it is written into kamailio.cfg)"
        )
    return text


def render(plan: BalancerPlan, runtime_dir: Path) -> RenderedConfig:
    """``kamailio.cfg`` and its dispatcher list for ``plan``, to be written into ``runtime_dir``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    listen = plan.listen
    advertise = f"{Node(plan.public_address, listen.port)}" if plan.public_address else ""
    wildcard = listen.host in ("0.0.0.0", "::")
    ping_host = plan.public_address or ("localhost" if wildcard else listen.uri_host)
    cfg = env.get_template("kamailio.cfg.j2").render(
        children=_CHILDREN,
        runtime_dir=check_path(runtime_dir, "balancer runtime dir"),
        list_file=check_path(runtime_dir / "dispatcher.list", "dispatcher list"),
        listen=str(listen),
        advertise=advertise,
        ping_host=ping_host,
        probe_interval_s=plan.probe_interval_s,
        failover_timeout_ms=max(100, round(plan.failover_timeout_s * 1000)),
        call_expire_s=plan.call_expire_s,
        retry_after_s=plan.retry_after_s,
        ds_algorithm=ALGORITHMS[plan.algorithm],
        call_load=plan.algorithm == "call_load",
        algorithm_doc=(
            f"a new call goes to the node with the fewest live calls, at most {plan.max_calls_per_node}"
            if plan.algorithm == "call_load"
            else "new calls go to the nodes in turn"
        ),
    )
    nodes = [
        {"uri_host": node.uri_host, "port": node.port, "duid": f"node{index}"}
        for index, node in enumerate(plan.nodes, 1)
    ]
    listing = env.get_template("dispatcher.list.j2").render(nodes=nodes, max_calls=plan.max_calls_per_node)
    return RenderedConfig(cfg, listing)


def front_mode(setting: str, kamailio_installed: bool) -> str:
    """``kamailio`` or ``redirect``: which front ``serve --workers N`` runs (``balancer.front``)."""
    if setting == "auto":
        return "kamailio" if kamailio_installed else "redirect"
    if setting == "kamailio" and not kamailio_installed:
        raise ConfigError(
            "balancer.front: kamailio, but kamailio is not installed (Debian: apt-get install kamailio);"
            " set balancer.front: redirect (or auto) to use the 302 front"
        )
    return setting


def front_plan(settings: Settings, host: str, ports: tuple[int, ...]) -> BalancerPlan:
    """The plan of ``serve --workers N``'s Kamailio: ``sip.bind_address:sip.port`` in front of the
    workers on ``host`` at ``ports``."""
    sip = settings.sip
    bind = sip.bind_address or "0.0.0.0"
    listen = f"[{bind}]:{sip.port}" if ":" in bind else f"{bind}:{sip.port}"
    front = Settings(
        sip=sip,
        balancer=replace(settings.balancer, nodes=(), public_address=sip.public_address),
    )
    node_host = f"[{host}]" if ":" in host else host
    return plan_from_settings(front, tuple(f"{node_host}:{port}" for port in ports), listen)
