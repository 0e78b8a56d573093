"""select(), the selector Windows has, on this machine: NETHELPER_SELECTOR
(or nethelper.SELECTOR) makes relays and NetNodes use it, and the relay
then keeps its connection cap within what select() can watch. Tests marked
``both_selectors`` elsewhere run once with each selector."""
import os
import selectors
import subprocess
import sys

import nethelper
from conftest import HOST, ROOT, raw_connect


class CountingSelect(selectors.SelectSelector):
    made = 0

    def __init__(self):
        super().__init__()
        CountingSelect.made += 1


def test_with_select_forced_the_relay_and_netnode_wait_in_select(monkeypatch):
    monkeypatch.setattr(nethelper, "SELECTOR", CountingSelect)
    with nethelper.Relay(["pong_game"], host=HOST, port=0) as relay:
        assert isinstance(relay._selector, CountingSelect)
        made = CountingSelect.made
        net = nethelper.NetNode()
        assert net.connect(HOST, "Player1", "pong_game", port=relay.port)
        assert CountingSelect.made > made               # connect() waited in select() too
        net.disconnect()


def test_the_environment_variable_chooses_select_for_a_whole_program():
    environment = dict(os.environ, NETHELPER_SELECTOR="select")
    said = subprocess.run([sys.executable, "-c", "import nethelper; "
                           "print(nethelper.SELECTOR.__name__)"], cwd=ROOT, env=environment,
                          stdout=subprocess.PIPE, text=True, timeout=30).stdout
    assert said.strip() == "SelectSelector"


def test_under_select_the_relay_caps_connections_below_what_select_can_watch(
        monkeypatch, started):
    """select() on Windows watches at most 512 sockets: a relay using it
    turns connection 461 away with server_full instead of failing."""
    monkeypatch.setenv("NETHELPER_SELECTOR", "select")
    _, port, _ = started("-g", "pong_game", "-p", "0", "-i", HOST)
    cap = nethelper._WINDOWS_SELECT_LIMIT - 40
    socks = []
    try:
        for _ in range(cap):                # (unjoined: the relay keeps them 5 s)
            socks.append(raw_connect(port))
        late = nethelper.NetNode()
        assert not late.connect(HOST, "Player1", "pong_game", port=port, timeout=5)
        assert late.error_code == nethelper.SERVER_FULL, late.error
    finally:
        for sock in socks:
            sock.close()
