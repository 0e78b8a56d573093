"""A relay's name and the open relay (--any-group), as rules without sockets.

The same things across a simulated network of several computers are in
test_lan.py; here RelayCore is fed events by hand (see test_relay_core).
"""
import json
import logging

import pytest

import nethelper
from conftest import auth
from nethelper import CLOSED, LOG_LINE, MEMBER, OBSERVER, RelayCore
from test_relay_core import Core, names_in, refuse_one


# ---------------------------------------------------------------------------
# A relay's name
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("computer, name", [
    ("DESKTOP-AB12CD", "desktop-ab12cd"),
    ("Minji's MacBook Pro.local", "minjis-macbook-pro"),
    ("3반 민지의 노트북", "3반-민지의-노트북"),
    ("lab_pc.school.example", "lab_pc"),
    ("...", "relay"),
    ("a" * 80, "a" * nethelper.MAX_RELAY_NAME_LENGTH),
])
def test_a_computers_name_is_made_typable(computer, name):
    assert nethelper.typable_name(computer) == name
    assert nethelper.relay_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "minji pc", "192.168.0.12", "a/b", "x" * 41, "탭\t"])
def test_a_relay_name_that_cannot_be_typed_as_one_word_is_refused(name):
    assert nethelper.relay_name_problem(name)
    with pytest.raises(ValueError, match="name"):
        RelayCore(["pong_game"], name=name)


def answer_of(relay):
    relay.take()
    relay.core.datagram(nethelper.discovery_query(), ("10.0.0.9", 5000), 65042, relay.now)
    [(_, _, answer)] = relay.take()
    return nethelper.parse_discovery_answer(answer)


def status_of(relay):
    conn = relay.open()
    relay.feed(conn, nethelper.req_frame(nethelper.UNKNOWN_ADDR, nethelper.REQ_STATUS))
    [status] = relay.sent()[conn]
    return status.body["data"]


def test_the_name_is_in_discovery_answers_and_status_answers():
    relay = Core(name="민지-pc")
    assert answer_of(relay)["name"] == "민지-pc"
    assert status_of(relay)["name"] == "민지-pc"


def test_an_answer_without_a_name_reads_as_no_name():
    answer = nethelper.DISCOVERY_ANSWER_PREFIX + json.dumps({"port": 65042}).encode()
    assert nethelper.parse_discovery_answer(answer)["name"] is None
    answer = nethelper.DISCOVERY_ANSWER_PREFIX + json.dumps({"port": 1, "name": 7}).encode()
    assert nethelper.parse_discovery_answer(answer)["name"] is None


# ---------------------------------------------------------------------------
# The open relay: any group a game asks for
# ---------------------------------------------------------------------------

def test_an_open_relay_makes_the_group_a_game_asks_for_and_keeps_groups_apart():
    relay = Core(groups=[], any_group=True)
    a1, a2 = relay.join("Player1", "pair1"), relay.join("Player2", "pair1")
    b1 = relay.join("Player1", "pair2")
    assert relay.core.members("pair1") == ["Player1", "Player2"]
    assert relay.core.members("pair2") == ["Player1"]
    sent = relay.sent()
    assert names_in(sent[b1][-1]) == ["Player1"]        # pair2 hears nothing of pair1
    relay.feed(a1, nethelper.data_frame(nethelper.ALL_ADDR, a1.addr,
                                        [nethelper.encode_message("hi", 1, False)]))
    relay.core.end_turn(relay.now)
    sent = relay.sent()
    assert a2 in sent and b1 not in sent


def test_an_open_relay_keeps_the_name_rules_and_the_group_limit():
    relay = Core(groups=[], any_group=True, max_peers=2)
    relay.join("Player1", "pair1")
    relay.join("Player2", "pair1")
    refusal, _ = refuse_one(relay, "Player3", "pair1")
    assert refusal.body["msg"] == "group_full"
    refusal, _ = refuse_one(relay, "Player1", "pair1\n")
    assert refusal.body["msg"] == "bad_request" and "Cannot make group" in refusal.body["data"]
    refusal, _ = refuse_one(relay, "ALL", "pair2")
    assert refusal.body["msg"] == "bad_request"
    assert sorted(relay.core.groups) == ["pair1"]       # refused games leave no group behind


def test_an_open_groups_goes_when_its_last_player_leaves_and_the_log_says_so():
    relay = Core(groups=["pong_game"], any_group=True)
    one, two = relay.join("Player1", "pair7"), relay.join("Player2", "pair7")
    relay.core.connection_lost(one, "reset", relay.now)
    assert "pair7" in relay.core.groups
    relay.core.connection_lost(two, "reset", relay.now)
    relay.core.end_turn(relay.now)
    assert sorted(relay.core.groups) == ["pong_game"]   # the groups it was given stay
    log = relay.log_text()
    assert log.count("new group pair7") == 1 and "group pair7 is empty: it goes" in log
    relay.join("Player1", "pair7")                      # and comes back when asked for
    assert relay.core.members("pair7") == ["Player1"]


def test_an_open_relays_summary_shows_the_groups_as_they_appear():
    relay = Core(groups=[], any_group=True, summary_interval=1.0)
    relay.join("Player1", "pair1")
    relay.advance(1.5)
    relay.join("Player1", "pair2")
    relay.advance(1.0)
    lines = relay.log_text().splitlines()
    first_pair2 = next(n for n, line in enumerate(lines) if "pair2" in line)
    assert any(line.startswith("group pair1: 1 player") for line in lines[:first_pair2])
    assert any(line.startswith("group pair2: 1 player") for line in lines[first_pair2:])


def test_a_watcher_may_open_a_group_too_and_it_goes_when_the_watcher_does():
    relay = Core(groups=[], any_group=True)
    conn = relay.open()
    relay.feed(conn, nethelper.observer_auth_frame("teacher", "pair3"))
    assert conn.state is OBSERVER
    relay.core.connection_lost(conn, "reset", relay.now)
    assert relay.core.groups == {}


def test_a_private_open_relay_lists_nothing_to_strangers():
    relay = Core(groups=[], any_group=True, private=True)
    relay.join("Player1", "secret_pair")
    assert "groups" not in answer_of(relay) and answer_of(relay)["any_group"] is True
    status = status_of(relay)
    assert "groups" not in status and status["players"] == 1
    assert "secret_pair" not in json.dumps(status)


def test_an_open_relay_says_it_is_open_and_a_closed_one_does_not():
    assert answer_of(Core(groups=[], any_group=True))["any_group"] is True
    assert "any_group" not in answer_of(Core())


def test_a_relay_with_no_groups_must_be_open():
    with pytest.raises(ValueError, match="any_group"):
        RelayCore([])
