"""Each relay option is declared once, in nethelper.RELAY_OPTIONS: the command
line, Relay's and RelayCore's keywords, their checks and the README's table
all come from it. These tests hold the four together."""
import re

import pytest

from conftest import ROOT
import nethelper
from nethelper import RELAY_OPTIONS, Relay, RelayCore


def readme_options_table():
    """The table under the README's "Relay options" heading, as text."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Relay options\n", 1)[1].split("\n#", 1)[0]
    return "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))


def test_the_readme_table_is_the_one_made_from_the_declarations():
    made = nethelper.relay_options_markdown()
    assert readme_options_table() == made, (
        "README.md's 'Relay options' table is out of date; print the new one with\n"
        "  python -c \"import nethelper; print(nethelper.relay_options_markdown())\"")


def test_every_option_is_named_once_and_the_table_names_every_one():
    names = [option.name for option in RELAY_OPTIONS]
    assert len(names) == len(set(names))
    flags = [flag for option in RELAY_OPTIONS for flag in option.flags]
    assert len(flags) == len(set(flags))
    table = readme_options_table()
    for option in RELAY_OPTIONS:
        assert option.text() in table, option.name


def test_the_core_takes_its_defaults_and_names_from_the_declarations():
    core = RelayCore(["g"])
    core_options = [o for o in RELAY_OPTIONS if o.scope == "core"]
    assert sorted(core.settings) == sorted(o.name for o in core_options)
    for option in core_options:
        assert getattr(core, option.name) == option.default, option.name
    # The burst and the tick follow from the settings, not from second copies.
    assert core.burst_bytes == max(2 * core.quota_bytes, core.max_frame_size)


def test_relay_passes_every_core_option_on_and_keeps_its_own():
    relay = Relay(["g"], host="127.0.0.1", port=0, quota_bytes=1234, auth_timeout=0.5,
                  private=True, discovery=False)
    assert (relay.host, relay.port) == ("127.0.0.1", 0)
    assert relay.core.quota_bytes == 1234 and relay.core.auth_timeout == 0.5
    assert relay.core.private is True
    assert "discovery" not in relay.core.settings and "host" not in relay.core.settings


def test_a_misspelt_option_is_named_with_the_right_ones():
    with pytest.raises(TypeError, match=r"no option 'quota_byte'.*quota_bytes"):
        Relay(["g"], quota_byte=5)
    with pytest.raises(TypeError, match="no option 'quiet'"):     # the command line's own
        RelayCore(["g"], quiet=True)


@pytest.mark.parametrize("name, value, words", [
    ("max_peers", 0, "max_peers must be from 1 to 254"),
    ("max_frame_size", 2_000_000, "only lower"),
    ("quota_bytes", 0, "quota_bytes must be above 0"),
    ("quota_frames", -1, "quota_frames must be above 0"),
    ("max_connections", 0, "max_connections must be at least 1"),
    ("liveness_timeout", 0, "liveness_timeout must be above 0"),
    ("port", 70000, "port must be from 0 to 65535"),
    ("quota_bytes", "lots", "quota_bytes must be a whole number"),
])
def test_each_check_is_the_declared_one_whatever_the_way_in(name, value, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        Relay(["g"], **{name: value})
    assert words in nethelper._OPTIONS[name].problem(value)


def test_every_flag_reaches_the_command_line_with_its_help():
    import argparse
    parser = argparse.ArgumentParser()
    for option in RELAY_OPTIONS:
        if option.flags:
            option.add_to(parser)
    defaults = vars(parser.parse_args([]))
    for option in RELAY_OPTIONS:
        if option.flags:
            assert defaults[option.name] == option.default, option.name
    assert vars(parser.parse_args(["--quota-bytes", "5", "-g", "a", "b", "--private"])) == dict(
        defaults, quota_bytes=5, groups=["a", "b"], private=True)


def test_stats_writes_the_relays_own_loop_figures_once_a_second(tmp_path):
    import json
    from conftest import HOST, wait_for
    path = tmp_path / "stats.jsonl"
    with Relay(["g"], host=HOST, port=0, stats=str(path)):
        assert wait_for(lambda: path.exists() and path.read_text().count("\n") >= 1, timeout=5)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(lines[0]) == {"at", "turns", "turn_p50_ms", "turn_p99_ms", "turn_max_ms",
                             "connections"}
    assert all(0 <= line["turn_p99_ms"] <= line["turn_max_ms"] + 0.1 for line in lines)
