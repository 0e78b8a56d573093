"""Shared test fixtures: real relays on loopback, real subprocesses.

Every test talks to 127.0.0.1 only, and every relay or game process started
here is stopped by the fixture that started it.
"""
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import time
from collections import namedtuple
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
    """An in-process relay serving groups pong_game and chat on a free port.

    Its send quotas are raised far above the defaults, so that tests which
    stream a big backlog through it are not throttled; the quota tests start
    relays of their own."""
    with nethelper.Relay(["pong_game", "chat"], host=HOST, port=0,
                         quota_bytes=64 * 1024 * 1024, quota_frames=1000000) as running:
        yield running


@pytest.fixture(params=["default", "select"])
def each_selector(request, monkeypatch):
    """Run a test twice: with the system's selector, and with select(), the
    only one Windows has (nethelper.SELECTOR for relays and nodes in this
    process, NETHELPER_SELECTOR for relays started as processes). Mark a test
    with ``both_selectors``; it must come before fixtures that start relays,
    which it does as a mark."""
    if request.param == "select":
        monkeypatch.setattr(nethelper, "SELECTOR", selectors.SelectSelector)
        monkeypatch.setenv("NETHELPER_SELECTOR", "select")
    return request.param


both_selectors = pytest.mark.usefixtures("each_selector")


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
def started():
    """Start relays with start(*args); every one is stopped afterwards."""
    processes = []

    def start(*args):
        process, port, banner = start_relay_process(*args)
        processes.append(process)
        return process, port, banner
    yield start
    for process in processes:
        stop_process(process)


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


# ---------------------------------------------------------------------------
# Raw-socket helpers: frames built and read by hand, exactly as PROTOCOL.md
# lays them out (struct and json, not nethelper's codec, so that a codec bug
# cannot hide itself)
# ---------------------------------------------------------------------------

Msg = namedtuple("Msg", "type dest sender body raw")


def frame(frame_type, dest, sender, payload=b"", version=b"020", length=None, meta=0):
    """One frame built by hand. ``length`` overrides the real length."""
    if length is None:
        length = 11 + len(payload)
    return struct.pack(">I3sBBBB", length, version, dest, sender, frame_type, meta) + payload


def js(value):
    """JSON bytes with json.dumps' default spacing, as the original module sends them."""
    return json.dumps(value).encode("utf-8")


def auth(name, group="pong_game"):
    return frame(nethelper.AUTH, 0, 255, js({"name": name, "group": group}))


def data(dest, sender, *messages):
    """DATA carrying (title, content) pairs, all queued."""
    return frame(nethelper.DATA, dest, sender,
                 js([{"title": t, "content": c, "queue": True} for t, c in messages]))


def decode(raw):
    """A frame's bytes as a Msg, its JSON payload decoded (None if empty)."""
    payload = raw[11:]
    body = json.loads(payload.decode("utf-8")) if payload else None
    return Msg(raw[9], raw[7], raw[8], body, bytes(raw))


def _recv_exactly(sock, count):
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            if not chunks:
                return None                     # a clean end between frames
            raise AssertionError("stream ended inside a frame: {!r}".format(bytes(chunks)))
        chunks += chunk
    return bytes(chunks)


def read_frame(sock, timeout=5.0):
    """The next frame from the relay as a Msg, or None when the relay closed."""
    sock.settimeout(timeout)
    head = _recv_exactly(sock, 11)
    if head is None:
        return None
    length, version = struct.unpack(">I3s", head[:7])
    assert 11 <= length <= nethelper.DEFAULT_MAX_FRAME_SIZE, "relay sent a frame of length {}".format(length)
    assert version == b"020", "relay sent version {!r}".format(version)
    rest = _recv_exactly(sock, length - 11) if length > 11 else b""
    assert rest is not None, "stream ended inside a frame"
    return decode(head + rest)


def read_until(sock, predicate, timeout=5.0):
    """Read frames until one satisfies ``predicate``; return it."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("expected frame never came; saw {}".format(seen))
        try:
            msg = read_frame(sock, remaining)
        except socket.timeout:
            continue
        if msg is None:
            raise AssertionError("relay closed the connection; saw {}".format(seen))
        if predicate(msg):
            return msg
        seen.append(msg)


def frames_of(chunk):
    reader = nethelper.FrameReader()
    reader.feed(chunk)
    return [decode(f.raw) for f in reader]


def expect_closed(sock, timeout=5.0):
    """Read until the relay closes the socket; return the frames read before.

    Fails if the socket is still open after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    received = bytearray()
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    else:
        pytest.fail("the relay did not close the connection within {} s".format(timeout))
    return frames_of(received)


def raw_join(port, name, group="pong_game"):
    """A raw socket that has joined: returns (sock, its address, peer list)."""
    sock = raw_connect(port)
    sock.sendall(auth(name, group))
    peers = read_until(sock, lambda m: m.type == nethelper.PEERS
                       and any(p["name"] == name for p in m.body))
    addr = next(p["addr"] for p in peers.body if p["name"] == name)
    return sock, addr, peers.body


def join(port, name, group="pong_game", host=HOST):
    """A NetNode that has joined ``group`` on the relay at ``port``."""
    node = nethelper.NetNode()
    assert node.connect(host, name, group, port=port, timeout=5), node.error
    return node


def pump_until(nodes, condition, timeout=5):
    """Let each NetNode send and read, again and again, until condition() holds."""
    def step():
        for node in nodes:
            node.process_send()
            node.process_recv()
        return condition()
    return wait_for(step, timeout=timeout)


def join_pair(relay):
    """Player1 and Player2 in pong_game on ``relay``, once each knows the other is there."""
    host, peer = join(relay.port, "Player1"), join(relay.port, "Player2")
    assert wait_for(lambda: host.process_recv() or "Player2" in host.get_peers())
    return host, peer


def free_port():
    """A port nothing listens on (bound for a moment, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Start building the packaged programs (tests/packaged.py) as soon as a
    test that needs them is chosen to run: the build takes longer than
    most of the suite, so it runs beside the other tests."""
    if any(item.get_closest_marker("packaged") for item in items):
        import packaged
        packaged.start()
