"""Shared test fixtures: real relays on loopback, real subprocesses.

Every test talks to 127.0.0.1 only, and every relay or game process started
here is stopped by the fixture that started it.
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Games run headless: no window, no sound card needed.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nethelper  # noqa: E402  (needs the path above)

HOST = "127.0.0.1"


@pytest.fixture
def relay():
    """An in-process relay serving groups pong_game and chat on a free port."""
    with nethelper.Relay(["pong_game", "chat"], host=HOST, port=0) as running:
        yield running


def start_relay_process(*args):
    """Start `python nethelper.py ARGS` (pass -p 0 -i 127.0.0.1 yourself) and read its port
    from the banner. Returns (process, port, banner_lines)."""
    command = [sys.executable, "-u", str(ROOT / "nethelper.py"), *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    banner = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip("\n"))
        if line.startswith("Server listening"):
            port = int(next(b for b in banner if b.strip().startswith("Port:")).split()[-1])
            return process, port, banner
    process.kill()
    raise AssertionError("relay did not start: {}".format(banner))


def stop_process(process, timeout=5):
    """Stop a child process politely, then firmly; return its remaining output."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


@pytest.fixture
def relay_process():
    """A relay started with its real command line (-g pong_game) as a subprocess."""
    process, port, banner = start_relay_process("-g", "pong_game", "-p", "0", "-i", HOST)
    process.banner = banner
    process.port = port
    yield process
    stop_process(process)


def raw_connect(port, timeout=5):
    """A plain TCP socket to the relay, for speaking bytes by hand."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def wait_for(condition, timeout=5, step=0.01):
    """Poll `condition()` until it is true or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
