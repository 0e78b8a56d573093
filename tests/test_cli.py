"""The relay's real command line, run as a subprocess.

Each test starts `python nethelper.py ...`, talks to it with NetNodes or raw
sockets over loopback, stops it, and reads what it printed.
"""
import re
import signal
import socket
import subprocess
import sys

import pytest

from conftest import (HOST, ROOT, expect_closed, free_port, join, pump_until, raw_connect,
                      raw_join, stop_process, wait_for)
import nethelper
from nethelper import DATA, SYSM, NetNode, encode_frame

LOOPBACK = ("-i", HOST, "-p", "0")
THIS_COMPUTER = nethelper.typable_name(socket.gethostname())     # a relay's default name
TIME = r"\d\d:\d\d:\d\d "          # every log line starts with the time


def run_cli(*args, timeout=15):
    """Run the relay to completion (for -h and errors): a CompletedProcess."""
    return subprocess.run([sys.executable, "-u", str(ROOT / "nethelper.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_clean_error(result, *words):
    """A non-zero exit, one line on stderr that says what is wrong, no traceback."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]
    assert "Server listening" not in result.stdout
    return lines[0]


def round_trip(a, b, tag):
    assert pump_until([a, b], lambda: b.get_name() in a.get_peers()
                      and a.get_name() in b.get_peers()), (a.get_peers(), b.get_peers())
    assert a.send_msg(b.get_name(), "ping", tag, queue=True)
    assert pump_until([a, b], lambda: b.available(a.get_name(), "ping")), (a.error, b.error)
    assert b.get_msg(a.get_name(), "ping") == tag
    assert b.send_msg(a.get_name(), "pong", tag, queue=True)
    assert pump_until([a, b], lambda: a.available(b.get_name(), "pong")), (a.error, b.error)
    assert a.get_msg(b.get_name(), "pong") == tag


def lines_matching(output, pattern):
    return [line for line in output.splitlines() if re.search(pattern, line)]


def has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# The banner and the options
# ---------------------------------------------------------------------------

def test_banner_with_interface(started):
    process, port, banner = started("-g", "pong_game", "chat", *LOOPBACK)
    assert banner == [
        "Starting Server",
        "  Interface: 127.0.0.1",
        "  Port:      {}".format(port),
        "  Name:      " + THIS_COMPUTER,
        "  Groups:    pong_game, chat",
        "Server listening",
    ]
    assert 0 < port < 65536
    a, b = join(port, "Alice"), join(port, "Bob")
    round_trip(a, b, "banner")


def test_banner_without_interface_says_all_and_serves_ipv4_and_ipv6(started):
    process, port, banner = started("-g", "pong_game", "chat", "-p", "0")
    assert banner == [
        "Starting Server",
        "  Interface: ALL",
        "  Port:      {}".format(port),
        "  Name:      " + THIS_COMPUTER,
        "  Groups:    pong_game, chat",
        "Server listening",
    ]
    a = join(port, "Alice", host="127.0.0.1")
    if has_ipv6_loopback():
        b = join(port, "Bob", host="::1")
    else:
        b = join(port, "Bob", host="127.0.0.1")       # no IPv6 loopback on this machine
    assert pump_until([a, b], lambda: a.get_peers() == ["Alice", "Bob"])
    round_trip(a, b, "dual stack")
    output = stop_process(process)
    # An IPv4 client on the dual-stack socket is shown as plain IPv4.
    assert lines_matching(output, TIME + r"joined +pong_game: Alice .*from 127\.0\.0\.1:\d+$")
    if has_ipv6_loopback():
        assert lines_matching(output, TIME + r"joined +pong_game: Bob .*from \[::1\]:\d+$")


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_interface_ipv6_loopback_only(started):
    process, port, banner = started("-g", "pong_game", "-i", "::1", "-p", "0")
    assert "  Interface: ::1" in banner
    a, b = join(port, "Alice", host="::1"), join(port, "Bob", host="::1")
    round_trip(a, b, "v6")
    # It listens on ::1 only: IPv4 loopback finds nobody.
    node = NetNode()
    assert not node.connect("127.0.0.1", "Carol", "pong_game", port=port, timeout=3)
    assert node.error_code == "no_relay"


def test_several_groups_with_g(started):
    process, port, banner = started("-g", "pong_game", "chat", "lobby", *LOOPBACK)
    assert "  Groups:    pong_game, chat, lobby" in banner
    for group in ("pong_game", "chat", "lobby"):
        a, b = join(port, "Alice", group), join(port, "Bob", group)
        round_trip(a, b, group)
    node = NetNode()
    assert not node.connect(HOST, "Eve", "other", port=port, timeout=5)
    assert node.error_code == "unknown_group"


def test_groups_file_with_comments_and_blank_lines(started, tmp_path):
    groups = tmp_path / "groups.txt"
    groups.write_text("# groups for class 3B\n\npong_game\n   chat   # the chat room\n"
                      "\n# quiz  (commented out)\nlobby\n", encoding="utf-8")
    process, port, banner = started("-f", str(groups), *LOOPBACK)
    assert "  Groups:    pong_game, chat, lobby" in banner
    a, b = join(port, "Alice", "chat"), join(port, "Bob", "chat")
    round_trip(a, b, "from file")
    node = NetNode()
    assert not node.connect(HOST, "Eve", "quiz", port=port, timeout=5)
    assert node.error_code == "unknown_group"


def test_g_and_f_together(started, tmp_path):
    groups = tmp_path / "groups.txt"
    groups.write_text("chat\n# comment\n\npong_game\n", encoding="utf-8")
    process, port, banner = started("-g", "pong_game", "lobby", "-f", str(groups), *LOOPBACK)
    # Both sources, in order, without repeating pong_game.
    assert "  Groups:    pong_game, lobby, chat" in banner
    for group in ("lobby", "chat"):
        a, b = join(port, "Alice", group), join(port, "Bob", group)
        round_trip(a, b, group)


def test_port_zero_gets_a_free_port(started):
    process, port, banner = started("-g", "pong_game", *LOOPBACK)
    assert port != 0
    with raw_connect(port):
        pass
    a, b = join(port, "Alice"), join(port, "Bob")
    round_trip(a, b, "port 0")


def test_specific_port(started):
    wanted = free_port()
    process, port, banner = started("-g", "pong_game", "-i", HOST, "-p", str(wanted))
    assert port == wanted
    assert "  Port:      {}".format(wanted) in banner
    a, b = join(wanted, "Alice"), join(wanted, "Bob")
    round_trip(a, b, "fixed port")


def test_names_file_names_nodes_that_ask(started, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("# class list\nRed\n\nBlue   # second\n", encoding="utf-8")
    process, port, banner = started("-g", "pong_game", "-n", str(names), *LOOPBACK)
    assert "  Names:     2 from {}".format(names) in banner, banner
    first, second, third = join(port, ""), join(port, ""), join(port, "")
    assert {first.get_name(), second.get_name()} == {"Red", "Blue"}
    # Once the list is used up, the relay numbers them.
    assert third.get_name() in {"Red2", "Blue2"}
    assert pump_until([first, second, third],
                      lambda: sorted(first.get_peers()) == sorted(
                          [first.get_name(), second.get_name(), third.get_name()]))
    round_trip(first, third, "named")


def test_max_peers_refuses_the_third_node(started):
    process, port, banner = started("-g", "pong_game", "chat", "--max-peers", "2", *LOOPBACK)
    a, b = join(port, "Alice"), join(port, "Bob")
    carol = NetNode()
    assert not carol.connect(HOST, "Carol", "pong_game", port=port, timeout=5)
    assert carol.error_code == "group_full"
    assert not carol.connected
    round_trip(a, b, "still two")
    assert join(port, "Carol", "chat").connected        # the cap is per group
    output = stop_process(process)
    refusals = lines_matching(output, "group_full")
    assert len(refusals) == 1 and re.match(TIME + "refused", refusals[0]), refusals


def test_join_leave_and_refusal_lines(started):
    process, port, banner = started("-g", "pong_game", *LOOPBACK)
    a, b = join(port, "Alice"), join(port, "Bob")
    taken = NetNode()
    assert not taken.connect(HOST, "Alice", "pong_game", port=port, timeout=5)
    assert taken.error_code == "name_taken"
    unknown = NetNode()
    assert not unknown.connect(HOST, "Zed", "nope", port=port, timeout=5)
    assert unknown.error_code == "unknown_group"
    # A member's forged frame is ignored and, without -v, not reported.
    with raw_connect(port) as raw:
        raw.sendall(encode_frame(1, 0, 255, b'{"name":"Mallory","group":"pong_game"}'))
        assert pump_until([a, b], lambda: "Mallory" in a.get_peers())
        raw.sendall(encode_frame(DATA, 255, 1, b"[]"))
        round_trip(a, b, "log lines")
    assert pump_until([a, b], lambda: a.get_peers() == ["Alice", "Bob"])
    b.disconnect()
    assert pump_until([a], lambda: a.get_peers() == ["Alice"])
    output = stop_process(process)
    assert "Traceback" not in output

    joined = lines_matching(output, "joined")
    assert len(joined) == 3, joined
    assert re.match(TIME + r"joined +pong_game: Alice from 127\.0\.0\.1:\d+$", joined[0]), joined
    assert re.match(TIME + r"joined +pong_game: Bob from 127\.0\.0\.1:\d+$", joined[1]), joined

    left = lines_matching(output, r"left +pong_game: Bob")
    assert len(left) == 1 and left[0].endswith("(left)"), left

    taken_lines = lines_matching(output, "name_taken")
    assert len(taken_lines) == 1, taken_lines
    assert re.match(TIME + r"refused +127\.0\.0\.1:\d+: name_taken \(.*Alice.*\)$", taken_lines[0])
    unknown_lines = lines_matching(output, "unknown_group")
    assert len(unknown_lines) == 1, unknown_lines
    assert re.match(TIME + r"refused +127\.0\.0\.1:\d+: unknown_group \(.*nope.*\)$",
                    unknown_lines[0])
    assert not lines_matching(output, "forged")
    assert output.rstrip().endswith("Server stopped. Goodbye!")


def test_quiet_hides_joins_but_not_problems(started):
    process, port, banner = started("-g", "pong_game", "-q", "--max-peers", "2", *LOOPBACK)
    assert banner[-1] == "Server listening"
    a = join(port, "Alice")
    # Player 2's ordinary join: "Alice" is taken, so it takes another name.
    refused = NetNode()
    assert not refused.connect(HOST, "Alice", "pong_game", port=port, timeout=5)
    assert refused.error_code == "name_taken"
    b = join(port, "Bob")
    round_trip(a, b, "quiet")
    full = NetNode()        # a real problem: whatever name it tries, the group is full
    assert not full.connect(HOST, "Alice", "pong_game", port=port, timeout=5)
    assert full.error_code == "group_full"
    b.disconnect()
    assert pump_until([a], lambda: a.get_peers() == ["Alice"])
    output = stop_process(process)
    assert not lines_matching(output, "joined"), output
    assert not lines_matching(output, r"\bleft\b"), output
    assert not lines_matching(output, "messages/s"), output      # no summaries
    assert not lines_matching(output, "name_taken"), output      # not a problem
    assert len(lines_matching(output, r"refused +127\.0\.0\.1:\d+: group_full \(Group "
                              r"'pong_game' is full")) == 1, output
    assert "Server stopped. Goodbye!" in output


def test_verbose_reports_ignored_frames(started):
    process, port, banner = started("-g", "pong_game", "-v", *LOOPBACK)
    a, b = join(port, "Alice"), join(port, "Bob")
    # A third node joins by hand and forges Alice's address.
    raw = raw_connect(port)
    raw.sendall(encode_frame(1, 0, 255, b'{"name":"Mallory","group":"pong_game"}'))
    assert pump_until([a, b], lambda: "Mallory" in a.get_peers())
    raw.sendall(encode_frame(DATA, 255, 1, b'[{"title":"x","content":1,"queue":true}]'))
    round_trip(a, b, "verbose")
    assert a.available("Alice", "x") == 0 and b.available("Alice", "x") == 0
    raw.close()
    assert pump_until([a, b], lambda: a.get_peers() == ["Alice", "Bob"])
    output = stop_process(process)
    forged = lines_matching(output, "forged")
    assert len(forged) == 1 and "Mallory" in forged[0], output
    assert len(lines_matching(output, "joined")) == 3


def test_help_exits_zero_with_usage():
    result = run_cli("-h")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: nethelper.py")
    for option in ("-g", "-f", "-p", "-i", "-n", "--max-peers", "-q", "-v", "-h"):
        assert option in result.stdout, option
    assert "Server listening" not in result.stdout
    assert result.stderr == ""


# ---------------------------------------------------------------------------
# Errors: one line, non-zero status, no traceback
# ---------------------------------------------------------------------------

def test_port_already_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli("-g", "pong_game", "-i", HOST, "-p", str(port))
    line = assert_clean_error(result, str(port), "already in use")
    assert line.startswith("Error:")
    assert result.stdout == ""


def test_groups_file_missing(tmp_path):
    missing = tmp_path / "no_such_groups.txt"
    result = run_cli("-f", str(missing), *LOOPBACK)
    line = assert_clean_error(result, str(missing))
    assert line.startswith("Error:")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n\n   # another\n"],
                         ids=["empty", "blank_lines", "comments_only"])
def test_groups_file_empty(tmp_path, content):
    groups = tmp_path / "groups.txt"
    groups.write_text(content, encoding="utf-8")
    result = run_cli("-f", str(groups), *LOOPBACK)
    line = assert_clean_error(result, str(groups))
    assert line.startswith("Error:")


def test_no_groups_at_all_serves_pong_game_and_says_how_to_choose(started):
    process, port, banner = started(*LOOPBACK)
    assert banner[0] == ("No groups given: serving group pong_game. To choose groups, name "
                         "them: python nethelper.py -g name1 name2")
    assert banner[1:] == ["Starting Server", "  Interface: 127.0.0.1",
                          "  Port:      {}".format(port), "  Name:      " + THIS_COMPUTER,
                          "  Groups:    pong_game",
                          "Server listening"]
    round_trip(join(port, "Alice"), join(port, "Bob"), "chosen for you")


def test_named_groups_print_the_banner_alone(started):
    process, port, banner = started("-g", "pong_game", *LOOPBACK)
    assert banner == ["Starting Server", "  Interface: 127.0.0.1", "  Port:      {}".format(port),
                      "  Name:      " + THIS_COMPUTER, "  Groups:    pong_game", "Server listening"]


@pytest.mark.parametrize("open_flag", [["--any-group"], ["-g", "*"]])
def test_an_open_relay_serves_any_group_a_game_asks_for(started, open_flag):
    process, port, banner = started(*open_flag, "--name", "teacher", *LOOPBACK)
    assert "  Name:      teacher" in banner and "  Groups:    any a game asks for" in banner
    assert not any(line.startswith("No groups given") for line in banner)
    pair1 = [join(port, "Player1", "pair1"), join(port, "Player2", "pair1")]
    lone = join(port, "Player1", "짝-7")
    status = nethelper.check_relay(HOST, port, samples=1).status
    assert status["groups"] == {"pair1": 2, "짝-7": 1} and status["any_group"] is True
    round_trip(*pair1, "an open relay")
    for node in pair1 + [lone]:
        node.disconnect()
    output = stop_process(process)
    assert "new group pair1" in output and "new group 짝-7" in output, output


def test_names_file_missing(tmp_path):
    missing = tmp_path / "names.txt"
    result = run_cli("-g", "pong_game", "-n", str(missing), *LOOPBACK)
    line = assert_clean_error(result, str(missing))
    assert line.startswith("Error:")


def test_interface_not_on_this_computer():
    # 192.0.2.1 is a documentation address: nothing is sent, the bind just fails.
    result = run_cli("-g", "pong_game", "-i", "192.0.2.1", "-p", "0")
    line = assert_clean_error(result, "cannot listen")
    assert line.startswith("Error:")


def test_groups_file_that_cannot_be_read(tmp_path):
    not_utf8 = tmp_path / "groups.txt"
    not_utf8.write_bytes(b"pong_game\nch\xffat\n")
    for path in (tmp_path, not_utf8):           # a directory, then bytes that are not UTF-8
        result = run_cli("-f", str(path), *LOOPBACK)
        line = assert_clean_error(result, str(path))
        assert line.startswith("Error:")


@pytest.mark.parametrize("value", ["0", "255", "-3"])
def test_max_peers_out_of_range(value):
    result = run_cli("-g", "pong_game", "--max-peers", value, *LOOPBACK)
    line = assert_clean_error(result, "max_peers")
    assert line.startswith("Error:")


@pytest.mark.parametrize("port", ["65536", "70000", "-1", "abc", "12.5"])
def test_bad_port_number(port):
    result = run_cli("-g", "pong_game", "-i", HOST, "-p", port)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "Server listening" not in result.stdout
    # argparse's usage synopsis comes first; the message itself is one line.
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert "port" in errors[0]
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]


# ---------------------------------------------------------------------------
# Stopping
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(started, signum):
    process, port, banner = started("-g", "pong_game", *LOOPBACK)
    a, b = join(port, "Alice"), join(port, "Bob")
    round_trip(a, b, "before stop")
    raw, raw_addr, _ = raw_join(port, "Raw")
    process.send_signal(signum)
    goodbye = expect_closed(raw)[-1]
    assert goodbye.type == SYSM and goodbye.dest == raw_addr, goodbye
    assert goodbye.body == {"type": 3, "msg": "relay_stopping", "data": "The relay was stopped."}
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
    assert output.rstrip().splitlines()[-1] == "Server stopped. Goodbye!"
    # The nodes find out that the relay is gone: it said goodbye (SYSM 3
    # relay_stopping) before closing, which a node may report as such.
    assert pump_until([a, b], lambda: not a.connected and not b.connected)
    assert a.error_code in ("lost", "relay_stopping"), a.error_code
    assert b.error_code in ("lost", "relay_stopping"), b.error_code


# ---------------------------------------------------------------------------
# Names the relay hands out, and names it logs
# ---------------------------------------------------------------------------

def test_names_file_never_makes_a_node_called_ALL(started, tmp_path):
    """"ALL" means everyone, so the relay refuses it as a name (PROTOCOL.md);
    it must not hand it out itself either."""
    names = tmp_path / "names.txt"
    names.write_text("ALL\n", encoding="utf-8")
    result = None
    try:
        process, port, banner = started("-g", "pong_game", "-n", str(names), *LOOPBACK)
    except AssertionError:
        # Refusing such a names file at start-up is fine too, cleanly.
        result = run_cli("-g", "pong_game", "-n", str(names), *LOOPBACK)
        assert_clean_error(result, str(names))
        return
    node = NetNode()
    assert node.connect(HOST, "", "pong_game", port=port, timeout=5), node.error
    assert node.get_name() != "ALL"
    assert "ALL" not in node.get_peers()


def test_names_with_line_breaks_cannot_forge_log_lines(started):
    """Each join and refusal is one log line, whatever name or group a node sends."""
    process, port, banner = started("-g", "pong_game", *LOOPBACK)
    a = join(port, "Alice")
    sneaky = "Eve\n99:99:99 joined   pong_game: Fake (address 9) from 10.0.0.9:1"
    eve = NetNode()
    eve.connect(HOST, sneaky, "pong_game", port=port, timeout=5)   # refused or joined
    lost = NetNode()
    assert not lost.connect(HOST, "Zed", "no\r\n99:99:99 pe", port=port, timeout=5)
    assert lost.error_code == "unknown_group"
    output = stop_process(process)
    lines = output.splitlines()             # everything after the banner
    assert lines[-1] == "Server stopped. Goodbye!"
    for line in lines:
        assert not line.startswith("99:99:99"), "a node forged a log line:\n" + output
    for line in lines[:-1]:
        assert re.match(TIME, line), "log output broken across lines:\n" + output
    assert len(lines_matching(output, "unknown_group")) == 1


def test_names_file_of_names_at_the_length_limit_still_names_every_node(started, tmp_path):
    """Numbering a 100-character name must not make it too long to hand out
    (that once hung the relay at full CPU)."""
    names = tmp_path / "names.txt"
    names.write_text("L" * 100 + "\n", encoding="utf-8")
    process, port, banner = started("-g", "pong_game", "-n", str(names), *LOOPBACK)
    nodes = [join(port, "") for _ in range(3)]
    got = [node.get_name() for node in nodes]
    assert got == ["L" * 100, "L" * 99 + "2", "L" * 99 + "3"]
    round_trip(nodes[0], nodes[2], "long names")


def test_private_relay_names_no_groups_to_strangers(started):
    process, port, banner = started("-g", "secret_game", "other", "--private", *LOOPBACK)
    lost = NetNode()
    assert not lost.connect(HOST, "Zed", "pong_game", port=port, timeout=5)
    assert lost.error_code == "unknown_group"
    assert "pong_game" in lost.error
    assert "secret_game" not in lost.error and "other" not in lost.error
    a, b = join(port, "Alice", "secret_game"), join(port, "Bob", "secret_game")
    round_trip(a, b, "private")
    output = stop_process(process)
    refusals = lines_matching(output, "unknown_group")
    assert len(refusals) == 1 and "secret_game" not in refusals[0], refusals


def test_quota_options_set_how_fast_a_node_is_read(started):
    process, port, banner = started("-g", "pong_game", "--quota-frames", "20", *LOOPBACK)
    a, b = join(port, "Alice"), join(port, "Bob")
    assert pump_until([a, b], lambda: "Bob" in a.get_peers())
    for n in range(60):                 # 60 frames at once: 20 more than the burst of 40
        assert a.send_msg("Bob", "n", n, queue=True)
        a.process_send()
    got = []

    def all_there():
        got.extend(b.get_all_msgs("Alice", "n") or ())
        return len(got) >= 60
    assert pump_until([a, b], all_there, timeout=5), got
    assert got == list(range(60)) and a.connected and b.connected
    output = stop_process(process)
    assert lines_matching(output, r"slowed +pong_game: Alice .*over its quota of 262144 bytes "
                                  r"and 20 frames a second")
    assert not lines_matching(output, r"left +pong_game: Alice \(over")


def test_quota_options_must_be_positive():
    assert_clean_error(run_cli("-g", "pong_game", "--quota-bytes", "0", *LOOPBACK), "quota")


# ---------------------------------------------------------------------------
# Limits that must agree with NetNode's, and files from Windows Notepad
# ---------------------------------------------------------------------------

def test_max_frame_size_can_only_lower_the_limit():
    line = assert_clean_error(run_cli("-g", "pong_game", "--max-frame-size", "2000000", *LOOPBACK),
                              "max_frame_size", "1048576", "only lower")
    assert line.startswith("Error:")


def test_a_lower_max_frame_size_is_accepted(started):
    process, port, banner = started("-g", "pong_game", "--max-frame-size", "4096", *LOOPBACK)
    round_trip(join(port, "Alice"), join(port, "Bob"), "small frames")


def test_groups_and_names_files_with_a_byte_order_mark(started, tmp_path):
    """Windows Notepad may save UTF-8 with a byte-order mark at the start."""
    groups, names = tmp_path / "groups.txt", tmp_path / "names.txt"
    groups.write_bytes("\ufeffpong_game\nchat\n".encode("utf-8"))
    names.write_bytes("\ufeffRed\n".encode("utf-8"))
    process, port, banner = started("-f", str(groups), "-n", str(names), *LOOPBACK)
    assert "  Groups:    pong_game, chat" in banner
    named = join(port, "")
    assert named.get_name() == "Red"
    round_trip(named, join(port, "Blue"), "bom")


@pytest.mark.skipif(sys.platform == "win32", reason="open-file limits are a POSIX thing")
def test_running_out_of_open_files_pauses_accepting_instead_of_spinning():
    # A relay allowed only 64 open files, and 80 connections at once: the
    # last ones cannot be accepted (EMFILE). The relay must say so a few
    # times, not thousands of times a second, and take new games again once
    # the crowd is gone.
    import resource
    import threading
    import time

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    command = [sys.executable, "-u", str(ROOT / "nethelper.py"), "-g", "pong_game",
               "-p", "0", "-i", HOST]
    relay = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, preexec_fn=few_files)
    lines, crowd = [], []
    reader = threading.Thread(target=lambda: lines.extend(relay.stdout), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any(l.startswith("Server listening") for l in lines))
        port = int(next(l for l in lines if l.strip().startswith("Port:")).split()[-1])
        for _ in range(80):
            crowd.append(raw_connect(port))
        assert wait_for(lambda: any("could not accept" in l for l in lines)), "".join(lines)
        time.sleep(1.0)     # the window in which a spinning relay would write thousands
        for sock in crowd:
            sock.close()
        crowd = []
        node = NetNode()
        assert wait_for(lambda: node.connect(HOST, "Player1", "pong_game", port=port,
                                             timeout=1), timeout=10), node.error
        node.disconnect()
    finally:
        for sock in crowd:
            sock.close()
        relay.terminate()
        relay.wait(timeout=10)
        reader.join(timeout=5)
    output = "".join(lines)
    complaints = output.count("could not accept a connection")
    assert 1 <= complaints <= 20, "%d complaints:\n%s" % (complaints, output[-2000:])
    assert "Traceback" not in output
