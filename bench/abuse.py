"""Members who try to slow everyone else down, against an honest pair.

    python bench/abuse.py                      # both scenarios, 3 repeats, 10 s each
    python bench/abuse.py --only partial --repeats 1 --seconds 5

A relay subprocess with its real command line and DEFAULT quotas
(``nethelper.py -g honest abuse -p 0 -i 127.0.0.1 -q --max-connections 1000``)
serves an honest pair in group ``honest``: a child process plays both
players, Player 1 sending a 150-byte frame to Player 2 sixty times a second
and Player 2 sending it straight back, and times each round trip. Meanwhile,
in group ``abuse``, this process plays the abusers of one scenario:

* ``partial``: 250 members each open a frame of 1 MiB (the largest), send
  all of it but 200 bytes, then add one byte every 2 s. A member the relay
  drops (for its budget of unfinished frames, or for a frame not finished
  in time) joins again at once and does it again.
* ``stuck``: 100 members that never read, and one member that broadcasts
  (dest ALL) 60 frames of 4 KiB a second to the group (within its quota).
  Once the kernel's buffers for a stuck member are full, what is sent to it
  waits in the relay, until it is dropped as too slow (then it joins again
  at once). Its default run is longer (--stuck-seconds) for that to happen.

Printed per scenario: the honest pair's round trip p50/p99/max (median and
spread over the repeats), its lost frames, the relay's peak memory (VmHWM)
and CPU, with the load average. Targets (issue 14): p99 <= 10 ms and peak
under 100 MiB. Standard library only; Linux (/proc); 127.0.0.1 only;
everything started here is stopped at the end, also on errors.
"""

import argparse
import multiprocessing
import os
import selectors
import socket
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import HOST, ROOT  # noqa: E402
from relayproc import RelayProcess  # noqa: E402

from nethelper import (  # noqa: E402
    ALL_ADDR, DATA, DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE, PEERS, FrameReader, auth_frame,
    encode_frame, heart_frame, parse_peers,
)

HONEST_FRAME = 150
TARGET_P99_MS = 10.0
TARGET_PEAK_MIB = 100.0


class DefaultQuotaRelay(RelayProcess):
    """The relay as a teacher starts it: default quotas and timeouts."""

    def command(self):
        profile = ["-m", "cProfile", "-o", self.profile] if self.profile else []
        return [sys.executable, *profile, os.path.join(ROOT, "nethelper.py"), "-g", "honest", "abuse",
                "-p", "0", "-i", HOST, "-q", "--max-connections", "1000"]


def join(port, name, group, blocking=True, receive_buffer=None):
    """A joined raw socket and its address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:                  # before connecting: a small window from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(auth_frame(name, group))
    reader = FrameReader()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("{} was refused".format(name))
        reader.feed(chunk)
        for frame in reader:
            if frame.type == PEERS:
                for peer_name, addr in parse_peers(frame.payload):
                    if peer_name == name:
                        sock.setblocking(blocking)
                        return sock, addr


# ---------------------------------------------------------------------------
# The honest pair (a child process of its own)
# ---------------------------------------------------------------------------

def honest_pair(port, seconds, out):
    a, a_addr = join(port, "Honest1", "honest")
    b, b_addr = join(port, "Honest2", "honest")
    time.sleep(0.2)                     # both PEERS lists are out
    a.setblocking(True)
    b.setblocking(True)
    a.settimeout(1.0)
    b.settimeout(1.0)
    pad = b"x" * (HONEST_FRAME - HEADER_SIZE - 2 - 20)
    ra, rb = FrameReader(), FrameReader()
    trips, lost = [], 0
    period = 1 / 60
    start = time.monotonic()
    next_send = start
    seq = 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now < next_send:
            time.sleep(next_send - now)
        next_send += period
        seq += 1
        sent_ns = time.perf_counter_ns()
        payload = b'"%020d' % seq + pad + b'"'
        a.sendall(encode_frame(DATA, b_addr, a_addr, payload))
        try:
            frame = _next_data(b, rb)                       # Player 2 gets it...
            b.sendall(encode_frame(DATA, a_addr, b_addr, frame.payload))   # ...and sends it back
            while True:
                frame = _next_data(a, ra)
                if int(frame.payload[1:21]) == seq:
                    break
            trips.append((time.perf_counter_ns() - sent_ns) / 1e6)
        except socket.timeout:
            lost += 1
        if seq % 60 == 0:
            a.sendall(heart_frame(a_addr))
            b.sendall(heart_frame(b_addr))
    a.close()
    b.close()
    out.send((trips, lost))


def _next_data(sock, reader):
    while True:
        for frame in reader:
            if frame.type == DATA:
                return frame
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the relay closed an honest player's connection")
        reader.feed(chunk)


# ---------------------------------------------------------------------------
# The abusers (this process, one selectors loop)
# ---------------------------------------------------------------------------

class Abuser:
    def __init__(self, index):
        self.name = "Abuser{}".format(index)
        self.sock = None
        self.addr = None
        self.outgoing = b""
        self.next_byte = 0.0
        self.rejoins = -1


def partial_scenario(port, seconds, count=250):
    """250 members keep a 1 MiB frame open, one more byte every 2 s."""
    selector = selectors.DefaultSelector()
    abusers = [Abuser(i) for i in range(count)]
    length = DEFAULT_MAX_FRAME_SIZE
    opening = struct.pack(">I3sBBBB", length, b"020", 1, 0, DATA, 0)   # sender set below

    def start(abuser):
        if abuser.sock is not None:
            selector.unregister(abuser.sock)
            abuser.sock.close()
        abuser.rejoins += 1
        abuser.sock, abuser.addr = join(port, abuser.name, "abuse", blocking=False)
        head = bytearray(opening)
        head[8] = abuser.addr
        abuser.outgoing = bytes(head) + b"\"" + b"x" * (length - HEADER_SIZE - 200)
        abuser.next_byte = time.monotonic() + 2.0
        selector.register(abuser.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, abuser)

    for abuser in abusers:
        start(abuser)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, events in selector.select(0.05):
            abuser = key.data
            if events & selectors.EVENT_READ:
                try:
                    chunk = abuser.sock.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    start(abuser)
                    continue
            if events & selectors.EVENT_WRITE and abuser.outgoing:
                try:
                    sent = abuser.sock.send(abuser.outgoing)
                    abuser.outgoing = abuser.outgoing[sent:]
                except BlockingIOError:
                    pass
                except OSError:
                    start(abuser)
                    continue
                if not abuser.outgoing:
                    selector.modify(abuser.sock, selectors.EVENT_READ, abuser)
        now = time.monotonic()
        for abuser in abusers:
            if not abuser.outgoing and now >= abuser.next_byte:
                abuser.next_byte = now + 2.0
                try:
                    abuser.sock.send(b"x")
                except OSError:
                    start(abuser)
    rejoins = sum(a.rejoins for a in abusers)
    for abuser in abusers:
        abuser.sock.close()
    selector.close()
    return {"rejoins": rejoins}


def stuck_scenario(port, seconds, count=100):
    """100 members never read; one broadcasts 60 frames of 4 KiB a second."""
    stuck = []
    rejoins = 0

    def stuck_one(index):
        sock, addr = join(port, "Stuck{}".format(index), "abuse", blocking=False,
                          receive_buffer=4096)
        hearts.append(heart_frame(addr))
        return sock

    hearts = []

    def beat():
        for index, sock in enumerate(stuck):
            try:
                sock.send(hearts[index])
            except OSError:
                pass

    next_heart = time.monotonic() + 1.0
    for index in range(count):
        stuck.append(stuck_one(index))
        if time.monotonic() >= next_heart:          # joining 100 can take a while
            beat()
            next_heart = time.monotonic() + 1.0
    caster, caster_addr = join(port, "Caster", "abuse", blocking=False)
    frame = encode_frame(DATA, ALL_ADDR, caster_addr, b'"' + b"b" * (4096 - HEADER_SIZE - 2) + b'"')
    start = time.monotonic()
    next_send = start
    pending = b""
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now < next_send:
            time.sleep(min(next_send - now, 0.005))
            continue
        next_send += 1 / 60
        pending += frame
        try:
            sent = caster.send(pending)
            pending = pending[sent:]
        except BlockingIOError:
            pass
        except OSError:
            raise RuntimeError("the relay dropped the broadcaster, who sends within its quota")
        try:
            caster.recv(1 << 20)        # the caster reads (PEERS lists, hearts)
        except BlockingIOError:
            pass
        if now < next_heart:
            continue
        next_heart = now + 1.0
        for index, sock in enumerate(stuck):   # alive (HEART), never reading
            try:
                sock.send(hearts[index])
                continue
            except BlockingIOError:
                continue
            except OSError:
                pass                            # dropped (as too slow): join again
            sock.close()
            stuck[index] = stuck_one(index)
            hearts[index] = hearts.pop()
            rejoins += 1
    for sock in stuck + [caster]:
        sock.close()
    return {"rejoins": rejoins}


SCENARIOS = {"partial": partial_scenario, "stuck": stuck_scenario}


def run_once(name, seconds, workdir, profile=None):
    """One scenario against a fresh relay: the honest pair's figures and the relay's."""
    relay = DefaultQuotaRelay(["honest", "abuse"], workdir, "abuse-" + name,
                              profile=profile).start()
    child = None
    try:
        parent_end, child_end = multiprocessing.Pipe()
        child = multiprocessing.get_context("fork").Process(
            target=honest_pair, args=(relay.port, seconds + 1.0, child_end), daemon=True)
        child.start()
        cpu0, wall0 = relay.cpu_seconds(), time.monotonic()
        extra = SCENARIOS[name](relay.port, seconds)
        cpu = (relay.cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
        if not parent_end.poll(30):
            raise RuntimeError("the honest pair did not report")
        trips, lost = parent_end.recv()
        peak = relay.memory_kib()["VmHWM"] / 1024
        trips.sort()
        return {"p50_ms": statistics.median(trips), "p99_ms": trips[int(len(trips) * 0.99)],
                "max_ms": trips[-1], "trips": len(trips), "lost": lost, "peak_mib": peak,
                "relay_cpu_pct": cpu, **extra}
    finally:
        if child is not None:
            child.join(5)
            if child.is_alive():
                child.terminate()
        relay.stop()


def spread(values):
    return "{:.1f} [{:.1f}-{:.1f}]".format(statistics.median(values), min(values), max(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", metavar="DIR", help="run the relay under cProfile: "
                        "DIR/abuse-SCENARIO.prof")
    parser.add_argument("--seconds", type=float, default=10.0, help="partial's duration")
    parser.add_argument("--stuck-seconds", type=float, default=25.0, help="stuck's duration")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in [args.only] if args.only else list(SCENARIOS):
            runs = []
            for repeat in range(args.repeats):
                load = os.getloadavg()[0]
                profile = os.path.join(os.path.abspath(args.profile), "abuse-{}.prof".format(
                    name)) if args.profile else None
                run = run_once(name, args.stuck_seconds if name == "stuck" else args.seconds,
                               workdir, profile)
                run["load"] = load
                runs.append(run)
                print("  {} #{}: p99 {:.1f} ms, peak {:.0f} MiB, relay CPU {:.0f}%, load {:.1f}, "
                      "{} rejoins".format(name, repeat + 1, run["p99_ms"], run["peak_mib"],
                                          run["relay_cpu_pct"], load, run["rejoins"]), flush=True)
            results[name] = runs
    print()
    print("scenario  honest round trip ms: p50 / p99 / max   lost  relay peak MiB  relay CPU %  "
          "load  verdict")
    failed = False
    for name, runs in results.items():
        p99 = statistics.median(r["p99_ms"] for r in runs)
        peak = statistics.median(r["peak_mib"] for r in runs)
        ok = p99 <= TARGET_P99_MS and peak < TARGET_PEAK_MIB
        failed |= not ok
        print("{:8}  {} / {} / {}  {}  {}  {}  {}  {}".format(
            name, spread([r["p50_ms"] for r in runs]), spread([r["p99_ms"] for r in runs]),
            spread([r["max_ms"] for r in runs]), max(r["lost"] for r in runs),
            spread([r["peak_mib"] for r in runs]), spread([r["relay_cpu_pct"] for r in runs]),
            spread([r["load"] for r in runs]),
            "ok" if ok else "MISSED (p99 <= {:g} ms, peak < {:g} MiB)".format(
                TARGET_P99_MS, TARGET_PEAK_MIB)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
