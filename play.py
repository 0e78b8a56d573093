"""Play network Pong on this computer: a relay and two game windows at once.

    python play.py            two windows: left bar A/Z, right bar Up/Down
    python play.py --bot      the computer plays the right bar
    python play.py --group pong3    play in group pong3 (of a relay already running, too)

It starts the relay, starts pong_net.py twice, and stops the relay again
when both windows are closed. When a relay already runs on this computer,
it says what that relay has and uses it if the group has room for two more
players; if not, it starts a relay of its own on a free port. To play
across a network instead, see README.md.
"""
import argparse
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

if sys.version_info < (3, 8):
    sys.exit("play.py needs Python 3.8 or newer, but this is Python %d.%d. "
             "Install a newer Python from https://www.python.org" % sys.version_info[:2])

# (after the version check)
from nethelper import DEFAULT_PORT, NO_RELAY, OLD_RELAY, RELAY_OK, check_relay  # noqa: E402

HERE = Path(__file__).resolve().parent
GROUP = "pong_game"         # the group the games join (--group)
HOST_WAIT = 10.0            # s: the longest wait for the first window to join
# Said when the games could not start: the commands of README.md's first lines.
INSTALL_HELP = """\
The games need Pygame Zero (the pgzero and pygame packages), and this Python
({python}) does not have them. In the folder with play.py, type:

  Windows:        py -m venv .venv
                  .venv\\Scripts\\pip install -r requirements.txt
                  .venv\\Scripts\\python play.py
  macOS, Linux:   python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python play.py

or add them to this Python: "{python}" -m pip install -r requirements.txt"""


def missing_packages():
    """The packages the games need that this Python cannot import."""
    return [name for name in ("pygame", "pgzero") if importlib.util.find_spec(name) is None]


def relay_to_use(port, group):
    """(port, whether to start a relay there). A relay already running on
    this computer is used when group has room for both games; otherwise (or
    when something else has the port) a relay of our own starts on a free
    port. Either way it says what it found."""
    result = check_relay("localhost", port, timeout=1.0, samples=1)
    if result.code == NO_RELAY:
        return port, True
    room, found = room_for_two(result, group)
    print(found, flush=True)
    if room:
        print("The games join it, in group %s." % group, flush=True)
        return port, False
    free = free_port()
    print("So this starts a relay of its own, on port %d." % free, flush=True)
    return free, True


def room_for_two(result, group):
    """(whether both games fit in group, what was found there, in words)."""
    if result.code == OLD_RELAY:
        return False, ("A relay already runs on port %d, but it cannot say who plays in "
                       "group %s (an original relay?)." % (result.port, group))
    if result.code != RELAY_OK:
        return False, "Port %d is taken: %s" % (result.port, result.message)
    status = result.status
    relay = 'A relay ("%s")' % status["name"] if isinstance(status.get("name"), str) \
        else "A relay"
    groups = status.get("groups")
    if not isinstance(groups, dict):
        return False, ("%s already runs on port %d; it does not list its groups (--private), "
                       "so group %s may be in use." % (relay, result.port, group))
    listing = ", ".join("%s (%s)" % (g, players(n)) for g, n in groups.items()) or "none"
    found = "%s already runs on port %d. Its groups: %s%s." % (
        relay, result.port, listing, "; it makes any group a game asks for"
        if status.get("any_group") else "")
    if group in groups:
        return groups[group] == 0, found + ("" if groups[group] == 0 else
                                            " Group %s has no room for two more." % group)
    if status.get("any_group"):
        return True, found
    return False, found + " It has no group %s." % group


def players(count):
    return "%d player%s" % (count, "" if count == 1 else "s")


def free_port():
    """A TCP port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def start_relay(port, group):
    relay = subprocess.Popen([sys.executable, str(HERE / "nethelper.py"), "-g", group,
                              "-p", str(port), "-q"], cwd=HERE)
    deadline = time.monotonic() + 10
    while check_relay("localhost", port, timeout=1.0, samples=1).code != RELAY_OK:
        if relay.poll() is not None or time.monotonic() > deadline:
            sys.exit("Could not start the relay (see the message above).")
        time.sleep(0.1)
    return relay


def start_game(port, options, frames=None):
    # --frames (for the tests): pong_harness.py stops the game after that many frames.
    harness = [str(HERE / "pong_harness.py"), "--frames", str(frames)] if frames else []
    return subprocess.Popen([sys.executable, *harness, str(HERE / "pong_net.py"), "localhost",
                             str(port), *options], cwd=HERE)


def wait_for_the_host(port, group, game, most=HOST_WAIT):
    """Until the first window has joined group (the relay's status counts it),
    so that it becomes Player 1, the host: on a slow computer that can take
    longer than a fixed pause. At most `most` seconds; a relay that cannot
    say (an original one, or a private one) gets a pause of 1.5 s."""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline and game.poll() is None:
        status = check_relay("localhost", port, timeout=1.0, samples=1).status
        groups = status.get("groups") if status else None
        if not isinstance(groups, dict):
            time.sleep(1.5)
            return
        if groups.get(group, 0) > 0:
            return
        time.sleep(0.1)


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt     # clean up below, as for Ctrl+C


def main():
    parser = argparse.ArgumentParser(description="Network Pong on one computer.")
    parser.add_argument("--bot", action="store_true", help="the computer plays Player 2")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="the relay's port (default %(default)s)")
    parser.add_argument("--group", default=GROUP,
                        help="the group both games join (default %(default)s)")
    parser.add_argument("--frames", type=int, metavar="N",
                        help="close both games after N frames (for the tests)")
    args = parser.parse_args()
    # print() shows "?" for what the console cannot show, instead of failing.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass
    if missing_packages():
        sys.exit(INSTALL_HELP.format(python=sys.executable))
    group = ["--group", args.group]

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    port, start_one = relay_to_use(args.port, args.group)
    relay = start_relay(port, args.group) if start_one else None
    games = []
    try:
        games.append(start_game(port, group, args.frames))
        wait_for_the_host(port, args.group, games[0])   # the first window is Player 1
        games.append(start_game(port, group + (["--bot"] if args.bot else []), args.frames))
        codes = [game.wait() for game in games]
    except KeyboardInterrupt:
        codes = [1]
    finally:
        for process in games + ([relay] if relay else []):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=5)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
