"""REDRIVE_HTTP_ALLOW: parsing (strict, at start-up) and what each kind of entry allows."""

from __future__ import annotations

import ipaddress

import pytest

from executions.work.allow import AllowList, is_public
from tests.test_settings import start


def permits(allow: str, host: str, address: str, port: int = 443) -> bool:
    return AllowList.parse(allow).permits(host, ipaddress.ip_address(address), port)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata: link-local
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 - an address checked, not bound
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
    ],
)
def test_only_globally_reachable_unicast_addresses_are_public(address, public):
    assert is_public(ipaddress.ip_address(address)) is public


def test_star_allows_public_addresses_only():
    assert permits("*", "example.com", "93.184.215.14")
    assert not permits("*", "example.com", "10.0.0.1")


def test_an_entry_naming_a_private_address_range_or_host_allows_it():
    assert permits("*,10.0.0.0/8", "db.internal", "10.4.0.17")
    assert permits("127.0.0.1", "127.0.0.1", "127.0.0.1")
    assert permits("internal.example.com", "Internal.Example.com.", "10.0.0.9")
    assert not permits("internal.example.com", "other.example.com", "10.0.0.9")
    assert permits("fd00::/8", "v6.internal", "fd12::1")
    assert permits("::1", "localhost", "::ffff:127.0.0.1") is False
    assert permits("127.0.0.1", "localhost", "::ffff:127.0.0.1")


def test_ports_narrow_an_entry():
    assert permits("*:443", "example.com", "93.184.215.14", 443)
    assert not permits("*:443", "example.com", "93.184.215.14", 80)
    assert permits("10.0.0.0/8:5432", "db", "10.0.0.1", 5432)
    assert not permits("10.0.0.0/8:5432", "db", "10.0.0.1", 5433)
    assert permits("[::1]:8080", "::1", "::1", 8080)
    assert permits("[fd00::/8]:443", "h", "fd00::2", 443)
    assert permits("api.example.com:8443", "api.example.com", "93.184.215.14", 8443)


def test_nothing_is_allowed_by_an_empty_list():
    assert not permits("", "example.com", "93.184.215.14")


@pytest.mark.parametrize("entry", ["bad host", "10.0.0.0/33", "*:http", "[::1", "h:0", "a:1:b"])
def test_a_bad_entry_is_refused(entry):
    with pytest.raises(ValueError, match="REDRIVE|entry|port|host name"):
        AllowList.parse(f"*,{entry}")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDRIVE_HTTP_ALLOW": "*,bad host"},
            "REDRIVE_HTTP_ALLOW: 'bad host' is not a host name, an IP address or a CIDR range",
        ),
        ({"REDRIVE_JS_MEMORY_MB": "8"}, "REDRIVE_JS_MEMORY_MB must be >= 16; got 8"),
        (
            {"REDRIVE_HANDLER_MODULES": "billing/handlers.py"},
            "REDRIVE_HANDLER_MODULES must list dotted module paths; got 'billing/handlers.py'",
        ),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(env, message):
    done = start(env)
    assert done.returncode != 0
    assert message in done.stderr


def test_the_settings_default_to_any_public_address_and_64_mb():
    done = start(
        {},
        "print(settings.REDRIVE_HTTP_ALLOW, settings.REDRIVE_JS_MEMORY_MB, "
        "settings.REDRIVE_HANDLER_MODULES)",
    )
    assert done.stdout.strip() == "* 64 []"
