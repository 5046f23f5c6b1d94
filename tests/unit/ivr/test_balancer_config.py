"""The Kamailio configuration the balancer renders for given settings, and hostile values refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import BalancerSettings, Settings, SipSettings
from ivr.balancer_config import Node, front_mode, front_plan, parse_node, plan_from_settings, render

RUN = Path("/run/ivr-balancer-test")


def settings(**balancer: object) -> Settings:
    return Settings(
        sip=SipSettings(engine_call_limit=12, retry_after_s=7, max_call_duration_s=600),
        balancer=dataclasses.replace(BalancerSettings(), **balancer),  # type: ignore[arg-type]
    )


def test_call_load_config_probes_fails_over_and_record_routes() -> None:
    plan = plan_from_settings(
        settings(nodes=("10.0.0.11:5060",), probe_interval_s=3, failover_timeout_s=1.5),
        ("engine2.example.net:5070",),
        "10.0.0.10:5060",
    )
    out = render(plan, RUN)
    assert plan.nodes == (Node("10.0.0.11", 5060), Node("engine2.example.net", 5070))
    assert out.dispatcher_list.splitlines()[1:] == [
        "1 sip:10.0.0.11:5060 0 0 duid=node1;maxload=12",
        "1 sip:engine2.example.net:5070 0 0 duid=node2;maxload=12",
    ]
    cfg = out.cfg
    assert "listen=udp:10.0.0.10:5060\n" in cfg and "listen=tcp:10.0.0.10:5060\n" in cfg
    assert 'ds_select_dst("1", "10")' in cfg
    assert 'modparam("dispatcher", "ds_ping_interval", 3)' in cfg
    assert 'modparam("dispatcher", "ds_probing_mode", 1)' in cfg
    assert 'modparam("dispatcher", "ds_ping_reply_codes", "class=2")' in cfg
    assert 'modparam("dispatcher", "list_file", "/run/ivr-balancer-test/dispatcher.list")' in cfg
    assert 'modparam("dispatcher", "ds_hash_expire", 660)' in cfg
    assert 'modparam("tm", "fr_timer", 1500)' in cfg
    assert "record_route();" in cfg and "loose_route()" in cfg
    assert 't_check_status("486|503|408|480|500")' in cfg and "ds_next_dst()" in cfg
    assert cfg.count("ds_load_update();") == 3 and "ds_load_unset();" in cfg
    assert "Retry-After: 7" in cfg
    assert "advertise" not in cfg
    assert "302" not in cfg  # never a redirect for the trunk to follow


def test_round_robin_has_no_call_load_tracking_and_public_address_is_advertised() -> None:
    plan = plan_from_settings(
        settings(algorithm="round_robin", public_address="203.0.113.5", port=5080), ("[::1]:5071",)
    )
    out = render(plan, RUN)
    assert 'ds_select_dst("1", "4")' in out.cfg
    assert "ds_load_update" not in out.cfg and "ds_load_unset" not in out.cfg
    assert "listen=udp:0.0.0.0:5080 advertise 203.0.113.5:5080\n" in out.cfg
    assert "sip:balancer@203.0.113.5" in out.cfg
    assert "1 sip:[::1]:5071 0 0 duid=node1;maxload=12" in out.dispatcher_list


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("127.0.0.1", "is not HOST:PORT"),
        ("127.0.0.1:0", "port must be a number from 1 to 65535"),
        ("127.0.0.1:70000", "port must be a number"),
        ("127.0.0.1:50x", "port must be a number"),
        ('10.0.0.1";exit;"x:5060', "is not an IP address or host name"),
        ("evil\nhost:5060", "is not an IP address or host name"),
        ("host name:5060", "is not an IP address or host name"),
        ("sip:10.0.0.1:5060", "is not an IP address or host name"),
        ("::1:5060", "IPv6 address in brackets"),
        ("-bad.example:5060", "is not an IP address or host name"),
    ],
)
def test_hostile_node_addresses_are_refused_with_where_and_what(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as err:
        plan_from_settings(settings(), (text,))
    assert str(err.value).startswith("--node: ")


def test_a_hostile_node_in_settings_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^balancer.nodes: .*not an IP address"):
        plan_from_settings(settings(nodes=('a"b:5060',)))


def test_no_nodes_duplicates_and_listen_on_a_node_are_refused() -> None:
    with pytest.raises(ConfigError, match="no engine nodes"):
        plan_from_settings(settings())
    with pytest.raises(ConfigError, match="listed twice"):
        plan_from_settings(settings(nodes=("127.0.0.1:5071",)), ("127.0.0.1:5071",))
    with pytest.raises(ConfigError, match="also an engine node"):
        plan_from_settings(settings(), ("127.0.0.1:5071",), "127.0.0.1:5071")
    with pytest.raises(ConfigError, match="probe_interval_s: 0 is outside"):
        plan_from_settings(settings(probe_interval_s=0), ("127.0.0.1:5071",))
    with pytest.raises(ConfigError, match=r"balancer\.public_address"):
        plan_from_settings(settings(public_address="1.2.3.4\nlisten=udp:0.0.0.0:1"), ("127.0.0.1:5071",))


@pytest.mark.parametrize("path", ["relative/dir", '/tmp/a"b', "/tmp/a\nb", "/tmp/a b", "/tmp/a\\b"])
def test_runtime_dirs_that_would_break_the_quoted_config_are_refused(path: str) -> None:
    plan = plan_from_settings(settings(), ("127.0.0.1:5071",))
    with pytest.raises(ConfigError, match="balancer runtime dir"):
        render(plan, Path(path))


def test_ipv6_node_parses_and_prints_in_brackets() -> None:
    node = parse_node(" [2001:db8::7]:5062 ", "--node")
    assert node == Node("2001:db8::7", 5062) and str(node) == "[2001:db8::7]:5062"


def test_front_mode_prefers_kamailio_and_refuses_it_when_missing() -> None:
    assert front_mode("auto", kamailio_installed=True) == "kamailio"
    assert front_mode("auto", kamailio_installed=False) == "redirect"
    assert front_mode("redirect", kamailio_installed=True) == "redirect"
    with pytest.raises(ConfigError, match="kamailio is not installed"):
        front_mode("kamailio", kamailio_installed=False)


def test_serve_workers_front_listens_on_the_sip_port_in_front_of_the_worker_ports() -> None:
    s = dataclasses.replace(
        settings(nodes=("10.9.9.9:5060",)),
        sip=SipSettings(bind_address="127.0.0.1", port=5080, public_address="198.51.100.7"),
    )
    plan = front_plan(s, "127.0.0.1", (5081, 5082))
    assert plan.listen == Node("127.0.0.1", 5080)
    assert plan.nodes == (Node("127.0.0.1", 5081), Node("127.0.0.1", 5082))  # balancer.nodes not mixed in
    assert plan.public_address == "198.51.100.7"
