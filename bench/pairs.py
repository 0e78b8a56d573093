"""Pong pairs at 60 Hz: the relay's CPU per forwarded frame against reference relays.

N pairs, each pair two nodes alone in their own group; every node sends one
150-byte DATA frame to its partner every 1/60 s (Pong's ``ball_pos`` /
``bar_pos`` traffic). The relay under test is pinned to one CPU; its CPU
time over the measured window (``utime + stime`` from /proc/PID/stat)
divided by the frames it forwarded in that window is the figure the issue
judges, next to one-way latency p50/p99 and frames lost.

The same traffic runs in the same benchmark run, interleaved with it,
through the two reference relays (minrelay.py, epollrelay.py): same framing,
no rules (references.py does the repeats).

Generator: two processes forked for each run (``multiprocessing``, start
method ``fork``), node "a" of every pair in one and node "b" in the other,
so every frame crosses from one process to another through the relay; they
run on the CPUs the relay does not. Each is one thread with one
``select.epoll`` loop over its non-blocking sockets (no ``selectors`` layer,
frames cut with one ``struct`` unpack, numbers read at fixed offsets),
sending on a fixed schedule: node i of n is due at ``start + phase_i + k /
rate``, the phases spread evenly over the period in a random order. A sender
more than a period behind skips the slot (counted) rather than bursting; how
late each send went out is recorded, so a busy generator shows in the figures.
"""

import json
import multiprocessing
import os
import random
import select
import socket
import struct
import time

from loadgen import (DATA, HEADER_SIZE, HOST, PEERS, PROTOCOL_VERSION, SYSM, BenchError,
                     FixedFormat, auth_frame, heart_frame)
from relayproc import ORIGINAL_CPUS, ReferenceRelayProcess, RelayProcess, die_with_parent

clock = time.perf_counter_ns            # CLOCK_MONOTONIC: one clock for every process
HEADER = struct.Struct(">I3sBBBB")      # length, version, dest, sender, type, meta
# [{"title":"ball_pos","content":[SEQ,SENT_NS,412.75,287.25,5.5,-4.25,
#   {"bar":[30,250],"score":[3,2],"frame":12345}],"queue":true}]  -> 150-byte frames
PAIR_FRAME = FixedFormat("ball_pos", (8, 13),
                         (412.75, 287.25, 5.5, -4.25, {"bar": [30, 250], "score": [3, 2], "frame": 12345}))
KINDS = ("relay", "asyncio", "epoll")   # the relay under test, then the references
HEART_EVERY_NS = 1_000_000_000          # a node silent this long sends HEART (setup phases)
JOIN_BATCH = 50                         # connections per process in flight while joining
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT


def relay_cpu():
    """The CPU the relay under test is pinned to: the last one this benchmark may use."""
    return {max(ORIGINAL_CPUS)}


def start_relay(kind, workdir, tag, group_names, connections, cpus):
    """A fresh relay of ``kind`` ("relay": nethelper.py; else a reference)."""
    if kind == "relay":
        relay = RelayProcess(group_names, workdir, tag, max_connections=connections + 100, cpus=cpus,
                             stats=os.path.join(workdir, tag + ".stats"))
    else:
        relay = ReferenceRelayProcess(kind, workdir, tag, cpus=cpus)
    return relay.start()


# ---------------------------------------------------------------------------
# The two generator processes and the pipes to them
# ---------------------------------------------------------------------------

class Children:
    """Two forked generator processes, side 0 and 1, running ``target`` (a
    ``child_main(body)``: ``body(conn, side, *args)``), and a pipe to each.
    ``wait`` waits for a message of a kind from both. ``close()`` closes the
    pipes, which ends the children; any still there after 3 s get SIGTERM,
    then SIGKILL."""

    def __init__(self, target, *args):
        ctx = multiprocessing.get_context("fork")
        self.conns, self.procs = [], []
        try:
            for side in (0, 1):
                mine, theirs = ctx.Pipe()
                # A forked child inherits the parent's ends of its own pipe and of
                # the ones made before; it closes them, so that it sees its pipe
                # close when the parent closes it (or dies).
                proc = ctx.Process(target=target, args=(theirs, side, self.conns + [mine]) + args,
                                   daemon=True, name="bench-gen-{}".format(side))
                proc.start()
                theirs.close()
                self.conns.append(mine)
                self.procs.append(proc)
        except BaseException:
            self.close()
            raise

    def send(self, *message):
        for conn in self.conns:
            conn.send(message)

    def wait(self, kind, timeout):
        """The payloads of a (kind, payload) message from each child, side 0 first."""
        end = time.monotonic() + timeout
        got = []
        for side, conn in enumerate(self.conns):
            remaining = end - time.monotonic()
            if remaining <= 0 or not conn.poll(remaining):
                raise BenchError("generator {} sent no {!r} within {:g} s".format(side, kind, timeout))
            try:
                message = conn.recv()
            except (EOFError, OSError):
                raise BenchError("generator {} is gone".format(side))
            if message[0] == "error":
                raise BenchError("generator {}: {}".format(side, message[1]))
            if message[0] != kind:
                raise BenchError("expected {!r} from generator {}, got {!r}".format(kind, side, message[0]))
            got.append(message[1])
        return got

    def close(self):
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            proc.join(3)
            if proc.is_alive():
                proc.terminate()
                proc.join(3)
            if proc.is_alive():
                proc.kill()
                proc.join(3)


def child_main(body):
    """Run ``body(conn, side, *args)`` in a child; report an exception as ("error", why)."""
    def main(conn, side, inherited, *args):
        die_with_parent()
        for other in inherited:
            other.close()
        try:
            body(conn, side, *args)
        except BaseException as exc:        # also SIGTERM / Ctrl-C: tell the parent, then go
            try:
                conn.send(("error", str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
                    type(exc).__name__, exc)))
            except (OSError, ValueError):
                pass
        finally:
            conn.close()
    return main


# ---------------------------------------------------------------------------
# One generator process
# ---------------------------------------------------------------------------

class PairNode:
    __slots__ = ("sock", "fd", "name", "partner", "group", "addr", "partner_addr", "hdr",
                 "sent", "expect", "received", "out_of_order", "pending", "unsent", "last_send")

    def __init__(self, sock, name, partner, group):
        self.sock, self.fd = sock, sock.fileno()
        self.name, self.partner, self.group = name, partner, group
        self.addr = self.partner_addr = self.hdr = None
        self.sent = self.expect = self.received = self.out_of_order = 0
        self.pending = b""
        self.unsent = bytearray()
        self.last_send = 0


class PairSide:
    """One generator process's half of the nodes (node "a" or "b" of every pair)."""

    def __init__(self, conn, side, port, pairs):
        self.conn, self.side, self.port, self.pairs = conn, side, port, pairs
        self.epoll = select.epoll()
        self.epoll.register(conn.fileno(), EPOLLIN)
        self.nodes = {}                 # fd -> PairNode
        self.inbox = []
        self.lost = []
        self.buffer = bytearray(256 * 1024)
        self.on_data = None             # on_data(node, data, pos) for each DATA frame of the right length
        self.malformed = 0

    # -- setup ----------------------------------------------------------------

    def join_all(self, timeout=60.0):
        name, partner = ("a", "b") if self.side == 0 else ("b", "a")
        end = time.monotonic() + timeout
        for first in range(0, self.pairs, JOIN_BATCH):
            batch = []
            for i in range(first, min(first + JOIN_BATCH, self.pairs)):
                sock = socket.create_connection((HOST, self.port), timeout=10)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                node = PairNode(sock, name, partner, "p{}".format(i))
                self.nodes[node.fd] = node
                self.epoll.register(node.fd, EPOLLIN)
                self.send(node, auth_frame(name, node.group))
                batch.append(node)
            self.serve_until(lambda: all(n.addr is not None for n in batch), end - time.monotonic(),
                             "the relay to accept every node")

    def serve_until(self, done, timeout, what):
        end = time.monotonic() + timeout
        next_sweep = 0
        while not done():
            self.check()
            if time.monotonic() > end:
                raise BenchError("gave up waiting for {} after {:.0f} s".format(what, timeout))
            self.poll(0.02)
            now = clock()
            if now >= next_sweep:
                self.keepalive(now)
                next_sweep = now + 250_000_000

    def keepalive(self, now):
        for node in self.nodes.values():
            if node.addr is not None and now - node.last_send >= HEART_EVERY_NS:
                self.send(node, heart_frame(node.addr))

    def wait_message(self, kind, timeout):
        self.serve_until(lambda: self.inbox, timeout, "{!r} from the benchmark".format(kind))
        message = self.inbox.pop(0)
        if message[0] != kind:
            raise BenchError("expected {!r}, got {!r}".format(kind, message[0]))
        return message[1]

    def check(self):
        if self.lost:
            raise BenchError("{} node connection(s) lost, e.g. {}".format(len(self.lost), self.lost[0]))
        if self.malformed:
            raise BenchError("{} malformed frame(s) received".format(self.malformed))

    # -- I/O ------------------------------------------------------------------

    def send(self, node, data):
        node.last_send = clock()
        if node.unsent:
            node.unsent += data
            return
        try:
            sent = node.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.lost.append("{}/{}: send failed: {}".format(node.group, node.name, exc))
            return
        if sent < len(data):
            node.unsent += data[sent:]
            self.epoll.modify(node.fd, EPOLLIN | EPOLLOUT)

    def poll(self, timeout):
        nodes = self.nodes
        for fd, events in self.epoll.poll(timeout):
            node = nodes.get(fd)
            if node is None:
                try:
                    self.inbox.append(self.conn.recv())
                except (EOFError, OSError):
                    raise BenchError("the benchmark process is gone")
                continue
            if events & EPOLLOUT:
                self._flush(node)
            if events & ~EPOLLOUT:
                self._read(node)

    def _flush(self, node):
        try:
            sent = node.sock.send(node.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.lost.append("{}/{}: send failed: {}".format(node.group, node.name, exc))
            return
        del node.unsent[:sent]
        if not node.unsent:
            self.epoll.modify(node.fd, EPOLLIN)

    def _read(self, node):
        try:
            size = node.sock.recv_into(self.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            size, why = 0, str(exc)
        else:
            why = "the relay closed the connection"
        if not size:
            self.lost.append("{}/{}: {}".format(node.group, node.name, why))
            self.epoll.unregister(node.fd)
            del self.nodes[node.fd]
            node.sock.close()
            return
        data = node.pending + self.buffer[:size] if node.pending else self.buffer[:size]
        size = len(data)
        pos = 0
        unpack = HEADER.unpack_from
        while size - pos >= HEADER_SIZE:
            length, version, _dest, _sender, frame_type, _meta = unpack(data, pos)
            if version != PROTOCOL_VERSION or length < HEADER_SIZE:
                self.malformed += 1
                return
            end = pos + length
            if end > size:
                break
            if frame_type == DATA:
                if length == PAIR_FRAME.length and self.on_data is not None:
                    self.on_data(node, data, pos)
                else:
                    self.malformed += 1
            elif frame_type == PEERS:
                self._peers(node, bytes(data[pos + HEADER_SIZE:end]))
            elif frame_type == SYSM:
                message = json.loads(bytes(data[pos + HEADER_SIZE:end]))
                if message.get("type") in (1, 3):       # refused, goodbye
                    raise BenchError("the relay said to {}/{}: {}".format(
                        node.group, node.name, message))
            pos = end
        node.pending = bytes(data[pos:]) if pos < size else b""

    @staticmethod
    def _peers(node, payload):
        for peer in json.loads(payload):
            if peer["name"] == node.name:
                node.addr = peer["addr"]
            elif peer["name"] == node.partner:
                node.partner_addr = peer["addr"]
        if node.addr is not None and node.partner_addr is not None:
            node.hdr = PAIR_FRAME.header(node.partner_addr, node.addr)

    def close(self):
        for node in self.nodes.values():
            node.sock.close()
        self.nodes = {}
        self.epoll.close()


def _pairs_child(conn, side, port, pairs, rate_hz, seed):
    gen = PairSide(conn, side, port, pairs)
    try:
        gen.join_all()
        conn.send(("joined", len(gen.nodes)))
        epoch, start_ns, win0, win1, end_ns = gen.wait_message("go", 120)
        figures = _drive_pairs(gen, epoch, start_ns, win0, win1, end_ns, rate_hz, seed)
        conn.send(("sent", figures["sent"]))
        expected = gen.wait_message("expect", 30)
        nodes = list(gen.nodes.values())
        drained = time.monotonic()
        gen.serve_until(lambda: sum(n.received for n in nodes) >= expected or time.monotonic() - drained > 2,
                        5, "the last frames")
        figures.update(received=sum(n.received for n in nodes),
                       out_of_order=sum(n.out_of_order for n in nodes), lost_connections=len(gen.lost))
        conn.send(("result", figures))
        gen.wait_message("close", 60)
    finally:
        gen.close()


pairs_child = child_main(_pairs_child)


def _drive_pairs(gen, epoch, start_ns, win0, win1, end_ns, rate_hz, seed):
    """Send on schedule until ``end_ns``; time every frame that arrives.
    Figures cover the window [win0, win1): sends due in it, frames received in it."""
    fmt = PAIR_FRAME
    (s0, s1), (t0, t1) = fmt.spans
    b0, b1 = fmt.bases
    template = fmt.fmt
    period = int(1e9 / rate_hz)
    rng = random.Random(seed * 2 + gen.side)
    order = sorted(gen.nodes.values(), key=lambda n: rng.random())
    count = len(order)
    phases = [int(i * period / count) for i in range(count)]    # evenly spread, random order
    latencies, late = [], []
    in_window = [0]

    def on_data(node, data, pos):
        now = clock()
        seq = int(data[pos + s0:pos + s1]) - b0
        if seq != node.expect:
            node.out_of_order += 1
        node.expect = seq + 1
        node.received += 1
        if win0 <= now < win1:
            in_window[0] += 1
            latencies.append(now - epoch - (int(data[pos + t0:pos + t1]) - b1))

    gen.on_data = on_data       # before the start: the other process may begin a moment earlier
    # Partners in the other process may have joined a moment ago: their
    # PEERS frames are on their way. Wait for them until the start.
    gen.serve_until(lambda: clock() >= start_ns, 10, "the start")
    unknown = [n for n in order if n.hdr is None]
    if unknown:
        raise BenchError("{} node(s) never saw their partner in a PEERS frame".format(len(unknown)))
    send = gen.send
    poll = gen.poll
    k, base = 0, start_ns
    due = base + phases[0]
    sent = skipped = 0
    cpu0 = cpu_window = None
    while True:
        now = clock()
        if now >= end_ns:
            break
        if cpu0 is None and now >= win0:
            cpu0 = time.process_time()
        elif cpu_window is None and now >= win1:
            cpu_window = time.process_time() - cpu0
        while due <= now:
            node = order[k]
            behind = now - due
            if behind >= period:
                skipped += 1
            else:
                if win0 <= due < win1:
                    late.append(behind)
                node.sent += 1
                send(node, node.hdr + template % (b0 + node.sent - 1, b1 + clock() - epoch))
                sent += 1
            k += 1
            if k == count:
                k, base = 0, base + period
            due = base + phases[k]
        wait = (due - clock()) / 1e9
        poll(wait if wait > 0 else 0)
        if gen.lost or gen.malformed:
            gen.check()
    late.sort()
    window_s = (win1 - win0) / 1e9
    return {"sent": sent, "skipped_slots": skipped, "received_in_window": in_window[0],
            "latencies": latencies,
            "send_late_p99_ns": late[int(len(late) * 0.99)] if late else 0,
            "sends_in_window": len(late),
            "generator_cpu_pct": 100.0 * (cpu_window or 0.0) / window_s}


# ---------------------------------------------------------------------------
# One measured run, and the case
# ---------------------------------------------------------------------------

def run_pairs_once(kind, pairs, workdir, rate_hz=60, warmup_s=1.0, window_s=3.0, seed=1,
                   relay_cpus=None, generator_cpus=None):
    """``pairs`` pairs through a fresh relay of ``kind``; returns its figures
    (or {"error": ...}). Every process started here is stopped here."""
    result = {"kind": kind, "pairs": pairs}
    relay = children = None
    tag = "pairs-{}".format(pairs)
    try:
        relay_cpus = relay_cpus or relay_cpu()
        relay = start_relay(kind, workdir, tag, ["p{}".format(i) for i in range(pairs)],
                            2 * pairs, relay_cpus)
        # The generators get every other CPU this benchmark may use (on two cores: the other one).
        generator_cpus = generator_cpus or (os.sched_getaffinity(0) - set(relay_cpus)) or None
        result["cpus"] = {"relay": sorted(relay_cpus),
                          "generators": sorted(generator_cpus or os.sched_getaffinity(0))}
        children = Children(pairs_child, relay.port, pairs, rate_hz, seed)
        if generator_cpus:
            for proc in children.procs:
                os.sched_setaffinity(proc.pid, generator_cpus)
        began = time.monotonic()
        children.wait("joined", 120)
        result["setup_s"] = time.monotonic() - began
        epoch = clock()
        start_ns = epoch + 200_000_000
        win0 = start_ns + int(warmup_s * 1e9)
        win1 = win0 + int(window_s * 1e9)
        end_ns = win1 + 200_000_000
        children.send("go", (epoch, start_ns, win0, win1, end_ns))
        _sleep_until(win0)
        cpu0, wait0, sleeps0, at0 = (relay.cpu_seconds(), relay.cpu_wait_seconds(),
                                     relay.sleeps(), clock())
        _sleep_until(win1)
        cpu1, wait1, sleeps1, at1 = (relay.cpu_seconds(), relay.cpu_wait_seconds(),
                                     relay.sleeps(), clock())
        sent = children.wait("sent", window_s + 30)
        children.conns[0].send(("expect", sent[1]))
        children.conns[1].send(("expect", sent[0]))
        sides = children.wait("result", 30)
        children.send("close", None)
        result.update(_pairs_figures(sides, (cpu1 - cpu0), (at1 - at0) / 1e9, window_s, rate_hz, pairs))
        if wait0 is not None and wait1 is not None:
            result["relay_cpu_wait_pct"] = 100.0 * (wait1 - wait0) / result["window_s"]
        if sleeps0 is not None and sleeps1 is not None and sleeps1 > sleeps0:
            result["frames_per_wakeup"] = result["frames_forwarded"] / (sleeps1 - sleeps0)
        if not relay.alive():
            raise BenchError("the {} exited during the run".format(relay.what))
        result["peak_rss_mib"] = relay.memory_kib().get("VmHWM", 0) / 1024
        if kind == "relay":
            result.update(_turn_figures(relay.stats, win0 / 1e9, win1 / 1e9))
    except Exception as exc:            # recorded; the other runs still go on
        result["error"] = str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
            type(exc).__name__, exc)
    finally:
        try:
            if children is not None:
                children.close()
        finally:
            if relay is not None:
                relay.stop()
                problems = relay.problems()
                if problems:
                    result["relay_output"] = problems[:10]
    return result


def _sleep_until(instant_ns):
    while True:
        left = (instant_ns - clock()) / 1e9
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def _turn_figures(path, start_s, end_s):
    """The relay's own time per loop turn in the window, from its --stats
    lines (one a second; time.monotonic() is the clock the window was set
    by): the worst second's p99 and the longest turn."""
    seconds = []
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                figures = json.loads(line)
                if start_s < figures["at"] <= end_s + 1.0:    # a line covers the second before it
                    seconds.append(figures)
        os.remove(path)
    except (OSError, ValueError):
        return {}
    if not seconds:
        return {}
    return {"turn_p99_ms": max(s["turn_p99_ms"] for s in seconds),
            "turn_max_ms": max(s["turn_max_ms"] for s in seconds),
            "turns_per_s": sum(s["turns"] for s in seconds) / len(seconds)}


def _pairs_figures(sides, cpu_s, wall_s, window_s, rate_hz, pairs):
    latencies = sorted(sides[0].pop("latencies") + sides[1].pop("latencies"))
    forwarded = sides[0]["received_in_window"] + sides[1]["received_in_window"]
    sent = sides[0]["sent"] + sides[1]["sent"]
    received = sides[0]["received"] + sides[1]["received"]
    scheduled = 2 * pairs * rate_hz * window_s
    sends_in_window = sides[0]["sends_in_window"] + sides[1]["sends_in_window"]
    return {
        "relay_cpu_s": cpu_s, "window_s": wall_s,
        "relay_cpu_pct": 100.0 * cpu_s / wall_s,
        "frames_forwarded": forwarded,
        "cpu_us_per_frame": 1e6 * cpu_s / forwarded if forwarded else None,
        "p50_ms": _pct(latencies, 50) / 1e6 if latencies else None,
        "p99_ms": _pct(latencies, 99) / 1e6 if latencies else None,
        "max_ms": latencies[-1] / 1e6 if latencies else None,
        "sent": sent, "received": received, "lost": sent - received,
        "out_of_order": sides[0]["out_of_order"] + sides[1]["out_of_order"],
        "send_rate_pct": 100.0 * sends_in_window / scheduled,
        "skipped_slots": sides[0]["skipped_slots"] + sides[1]["skipped_slots"],
        "send_late_p99_ms": max(s["send_late_p99_ns"] for s in sides) / 1e6,
        "generator_cpu_pct": max(s["generator_cpu_pct"] for s in sides),
        "generator_cpu_pct_sides": [s["generator_cpu_pct"] for s in sides],
    }


def _pct(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q / 100))]
