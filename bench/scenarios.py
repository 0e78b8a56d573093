"""The traffic scenarios: pingpong, flood, classroom (and the school), fanout.

Each case is driven twice by the same generator in the same run: once through
a fresh relay subprocess ("relay") and once over direct loopback connections
with no relay ("floor"). ``measure()`` does one of those runs and returns its
figures; every loop in here is bounded in time (and count).
"""

import heapq
import random
import time

from loadgen import (ALL, DATA, FLOOD, HEADER_SIZE, LATENCY, BenchError, Loop,
                     make_fabric)
from relayproc import RelayProcess

clock = time.perf_counter_ns
KEEPALIVE_EVERY = 0.25          # seconds between keepalive sweeps


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list (None if empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))      # ceil(n * q / 100)
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def latency_summary(samples_ns):
    """p50/p90/p99/max/mean in microseconds, and the sample count."""
    values = sorted(samples_ns)
    if not values:
        return {"count": 0}
    us = 1e3
    return {"count": len(values),
            "p50_us": percentile(values, 50) / us, "p90_us": percentile(values, 90) / us,
            "p99_us": percentile(values, 99) / us, "max_us": values[-1] / us,
            "mean_us": sum(values) / len(values) / us}


class Schedule:
    """When each of ``count`` senders is next due, ``period_ns`` apart, with
    random phases. A sender more than one period behind skips the slots it
    missed (counted in ``skipped``) instead of sending a burst to catch up."""

    def __init__(self, count, period_ns, start_ns, rng):
        self.period = period_ns
        self.heap = [(start_ns + int(rng.random() * period_ns), i) for i in range(count)]
        heapq.heapify(self.heap)
        self.skipped = 0
        self.late_ns = []           # how late each send was against its slot

    def due(self, now):
        heap, period, out = self.heap, self.period, []
        while heap and heap[0][0] <= now:
            when, i = heap[0]
            out.append(i)
            self.late_ns.append(now - when)
            following = when + period
            if following <= now:
                missed = (now - following) // period + 1
                self.skipped += missed
                following += missed * period
            heapq.heapreplace(heap, (following, i))
        return out

    def wait_s(self, now):
        return max(0.0, (self.heap[0][0] - now) / 1e9) if self.heap else 0.05


def _pair_up(nodes, fmt):
    """Nodes come as a, b, a, b...: make each the other's partner."""
    for a, b in zip(nodes[0::2], nodes[1::2]):
        a.peer, b.peer = b, a
        a.hdr = fmt.header(b.addr, a.addr)
        b.hdr = fmt.header(a.addr, b.addr)


def _drain(loop, fabric, done, limit):
    """Serve the sockets until ``done()`` or ``limit`` seconds."""
    end = time.monotonic() + limit
    next_keepalive = 0.0
    while not done():
        now = time.monotonic()
        if now >= end:
            return False
        loop.poll(min(0.02, end - now))
        if now >= next_keepalive:
            fabric.keepalive(now)
            next_keepalive = now + KEEPALIVE_EVERY
    return True


def _order_figures(receivers):
    return {"out_of_order": sum(n.order_errors for n in receivers),
            "malformed": sum(n.bad for n in receivers)}


# ---------------------------------------------------------------------------
# pingpong: closed loop, one message in flight per pair
# ---------------------------------------------------------------------------

def drive_pingpong(loop, fabric, nodes, duration, max_trips=3_000_000):
    fmt = LATENCY
    (s0, s1), (t0, t1) = fmt.spans
    b0, b1 = fmt.bases
    template, length = fmt.fmt, fmt.length
    _pair_up(nodes, fmt)
    pingers = nodes[0::2]
    rtts = []
    running = [True]
    epoch = clock()
    send = loop.send

    def ping(a):
        a.sent += 1
        send(a.out, a.hdr + template % (b0 + a.sent, b1 + clock() - epoch))

    def on_frame(ep, frame_type, sender, buf, start, end):
        if frame_type != DATA:
            return
        node = ep.node
        if node in echoers:
            send(node.out, node.hdr + buf[start + HEADER_SIZE:end])
            return
        now = clock()
        if end - start != length or int(buf[start + s0:start + s1]) - b0 != node.sent:
            node.bad += 1
        rtts.append(now - epoch - (int(buf[start + t0:start + t1]) - b1))
        node.received += 1
        if running[0]:
            ping(node)

    echoers = set(nodes[1::2])
    loop.on_frame = on_frame
    start = time.monotonic()
    deadline = start + duration
    for a in pingers:
        ping(a)
    next_keepalive = start + KEEPALIVE_EVERY
    while len(rtts) < max_trips:
        now = time.monotonic()
        if now >= deadline:
            break
        loop.poll(min(deadline - now, KEEPALIVE_EVERY))
        if now >= next_keepalive:
            fabric.keepalive(now)
            next_keepalive = now + KEEPALIVE_EVERY
    window = time.monotonic() - start
    trips_in_window = len(rtts)
    running[0] = False
    _drain(loop, fabric, lambda: all(a.received == a.sent for a in pingers), 2.0)
    figures = latency_summary(rtts)
    figures.update(trips=trips_in_window, window_s=window, trips_per_s=trips_in_window / window,
                   unanswered=sum(a.sent - a.received for a in pingers),
                   malformed=sum(a.bad for a in pingers))
    return figures


# ---------------------------------------------------------------------------
# flood: senders push 65-byte DATA frames as fast as they are taken
# ---------------------------------------------------------------------------

def drive_flood(loop, fabric, nodes, duration, window_frames=8192, batch=1024):
    """Each sender keeps writing while its socket accepts, but never has more
    than ``window_frames`` frames unreceived (about 520 KiB): the relay drops
    a receiver with over 1 MiB waiting for it, and a flood without flow
    control would measure that, not throughput."""
    fmt = FLOOD
    ((s0, s1),) = fmt.spans
    (b0,) = fmt.bases
    length = fmt.length
    _pair_up(nodes, fmt)
    senders, receivers = nodes[0::2], nodes[1::2]
    # Whole-frame templates (header escaped for %-formatting).
    templates = {a: a.hdr.replace(b"%", b"%%") + fmt.fmt for a in senders}
    limit = fmt.limits[0]

    def on_frame(ep, frame_type, sender, buf, start, end):
        if frame_type != DATA:
            return
        node = ep.node
        if end - start != length:
            node.bad += 1
            return
        seq = int(buf[start + s0:start + s1]) - b0
        if seq != node.expect:
            node.order_errors += 1
        node.expect = seq + 1
        node.received += 1

    loop.on_frame = on_frame
    send = loop.send

    def pump():
        busy = False
        for a in senders:
            ep = a.out
            if ep.wbuf or ep.closed:
                continue
            room = window_frames - (a.sent - a.peer.received)
            if room <= 0:
                continue
            n = min(room, batch, limit - a.sent)
            if n <= 0:
                continue
            template = templates[a]
            send(ep, b"".join([template % (b0 + s) for s in range(a.sent, a.sent + n)]))
            a.sent += n
            busy = True
        return busy

    start = time.monotonic()
    deadline = start + duration
    last_total, last_at = 0, start
    next_keepalive = start + KEEPALIVE_EVERY
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        busy = pump()
        loop.poll(0 if busy else min(0.05, deadline - now))
        total = sum(b.received for b in receivers)
        if total != last_total:
            last_total, last_at = total, time.monotonic()
        if now >= next_keepalive:
            fabric.keepalive(now)
            next_keepalive = now + KEEPALIVE_EVERY
    send_window = time.monotonic() - start
    drain_end = time.monotonic() + 5.0
    while time.monotonic() < drain_end:
        if all(b.received + b.bad >= a.sent for a, b in zip(senders, receivers)) or loop.lost:
            break
        loop.poll(0.02)
        total = sum(b.received for b in receivers)
        if total != last_total:
            last_total, last_at = total, time.monotonic()
        fabric.keepalive(time.monotonic())
    elapsed = last_at - start
    sent = sum(a.sent for a in senders)
    received = sum(b.received for b in receivers)
    figures = {"frame_bytes": length, "window_frames": window_frames, "send_window_s": send_window,
               "elapsed_s": elapsed, "sent": sent, "received": received, "lost": sent - received,
               "frames_per_s": received / elapsed if elapsed > 0 else 0.0,
               "mib_per_s": received * length / elapsed / 2 ** 20 if elapsed > 0 else 0.0}
    figures.update(_order_figures(receivers))
    figures["in_order"] = figures["out_of_order"] == 0 and figures["malformed"] == 0
    return figures


# ---------------------------------------------------------------------------
# classroom / school: pairs each sending to the partner at a fixed rate
# ---------------------------------------------------------------------------

def drive_pairs_periodic(loop, fabric, nodes, duration, rate_hz, seed=1):
    fmt = LATENCY
    (s0, s1), (t0, t1) = fmt.spans
    b0, b1 = fmt.bases
    template, length = fmt.fmt, fmt.length
    _pair_up(nodes, fmt)
    latencies = []
    epoch = clock()

    def on_frame(ep, frame_type, sender, buf, start, end):
        if frame_type != DATA:
            return
        now = clock()
        node = ep.node
        if end - start != length:
            node.bad += 1
            return
        seq = int(buf[start + s0:start + s1]) - b0
        if seq != node.expect:
            node.order_errors += 1
        node.expect = seq + 1
        node.received += 1
        latencies.append(now - epoch - (int(buf[start + t0:start + t1]) - b1))

    loop.on_frame = on_frame
    figures = _run_schedule(loop, fabric, nodes, duration, rate_hz, seed, epoch,
                            lambda node, seq, now: loop.send(
                                node.out, node.hdr + template % (b0 + seq, b1 + now - epoch)))
    receivers = nodes
    sent = figures["sent"]
    _drain(loop, fabric, lambda: sum(n.received for n in receivers) >= sent or bool(loop.lost), 2.0)
    received = sum(n.received for n in receivers)
    figures.update(latency_summary(latencies))
    figures.update(received=received, lost=sent - received,
                   delivered_per_s=received / figures["window_s"])
    figures.update(_order_figures(receivers))
    return figures


def _run_schedule(loop, fabric, senders, duration, rate_hz, seed, epoch, send_one):
    """Call ``send_one(node, seq, now_ns)`` for each sender at ``rate_hz`` for
    ``duration`` seconds; return the sending figures."""
    period = int(1e9 / rate_hz)
    start_ns = clock() + 10_000_000
    schedule = Schedule(len(senders), period, start_ns, random.Random(seed))
    end_ns = start_ns + int(duration * 1e9)
    next_keepalive = time.monotonic()
    sent = 0
    while True:
        now = clock()
        if now >= end_ns:
            break
        for i in schedule.due(now):
            node = senders[i]
            send_one(node, node.sent, clock())
            node.sent += 1
            sent += 1
        loop.poll(min(schedule.wait_s(clock()), (end_ns - clock()) / 1e9, 0.05))
        mono = time.monotonic()
        if mono >= next_keepalive:
            fabric.keepalive(mono)
            next_keepalive = mono + KEEPALIVE_EVERY
    window = (clock() - start_ns) / 1e9
    target = len(senders) * rate_hz * duration
    late = sorted(schedule.late_ns)
    return {"rate_hz": rate_hz, "senders": len(senders), "window_s": window, "sent": sent,
            "target_sends": target, "send_rate_pct": 100.0 * sent / target if target else 0.0,
            "skipped_slots": schedule.skipped,
            "send_late_p99_ms": percentile(late, 99) / 1e6 if late else 0.0,
            "max_send_late_ms": late[-1] / 1e6 if late else 0.0}


# ---------------------------------------------------------------------------
# fanout: one node broadcasts to ALL (dest 255) of a big group
# ---------------------------------------------------------------------------

def drive_fanout(loop, fabric, nodes, duration, rate_hz, seed=1):
    fmt = LATENCY
    (s0, s1), (t0, t1) = fmt.spans
    b0, b1 = fmt.bases
    template, length = fmt.fmt, fmt.length
    caster, receivers = nodes[0], nodes[1:]
    header = fmt.header(ALL, caster.addr)
    latencies = []
    epoch = clock()

    def on_frame(ep, frame_type, sender, buf, start, end):
        if frame_type != DATA:
            return
        now = clock()
        node = ep.node
        if end - start != length:
            node.bad += 1
            return
        seq = int(buf[start + s0:start + s1]) - b0
        if seq != node.expect:
            node.order_errors += 1
        node.expect = seq + 1
        node.received += 1
        latencies.append(now - epoch - (int(buf[start + t0:start + t1]) - b1))

    send = loop.send

    def broadcast(node, seq, now):
        frame = header + template % (b0 + seq, b1 + now - epoch)
        for ep in node.fan:            # one socket via the relay; one per receiver on the floor
            send(ep, frame)

    loop.on_frame = on_frame
    figures = _run_schedule(loop, fabric, [caster], duration, rate_hz, seed, epoch, broadcast)
    expected = figures["sent"] * len(receivers)
    _drain(loop, fabric, lambda: sum(n.received for n in receivers) >= expected or bool(loop.lost), 2.0)
    received = sum(n.received for n in receivers)
    figures.update(latency_summary(latencies))
    figures.update(receivers=len(receivers), expected=expected, received=received,
                   lost=expected - received,
                   completeness_pct=100.0 * received / expected if expected else 0.0)
    figures.update(_order_figures(receivers))
    return figures


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

class Case:
    def __init__(self, name, scenario, groups, links, drive, **params):
        self.name, self.scenario = name, scenario
        self.groups, self.links = groups, links
        self.drive, self.params = drive, params

    @property
    def node_count(self):
        return sum(len(names) for _, names in self.groups)


def _pairs(prefix, count):
    groups = [("{}{}".format(prefix, i), ["a", "b"]) for i in range(count)]
    links = [(2 * i, 2 * i + 1) for i in range(count)]
    return groups, links


def _fan(size):
    groups = [("fan", ["n{}".format(i) for i in range(size)])]
    links = [(0, i) for i in range(1, size)]
    return groups, links


def make_cases(quick):
    """Every case, with durations for a full run or a quick smoke run."""
    short = 0.6 if quick else None
    cases = []
    for pairs in (1, 10, 50):
        cases.append(Case("pingpong-{}".format(pairs), "pingpong", *_pairs("pp", pairs),
                          drive_pingpong, duration=short or 3.0))
    for pairs in (1, 10):
        cases.append(Case("flood-{}".format(pairs), "flood", *_pairs("fl", pairs),
                          drive_flood, duration=short or 3.0))
    for groups, rate in ((15, 60), (100, 60), (500, 20)):
        cases.append(Case("classroom-{}".format(groups), "classroom", *_pairs("cl", groups),
                          drive_pairs_periodic, duration=short or 5.0, rate_hz=rate))
    for size in (50, 200):
        cases.append(Case("fanout-{}".format(size), "fanout", *_fan(size),
                          drive_fanout, duration=short or 5.0, rate_hz=60))
    return cases


# ---------------------------------------------------------------------------
# One measured run
# ---------------------------------------------------------------------------

def measure(case, mode, workdir, profile=None, relay_cpus=None):
    """Run ``case`` once, through a fresh relay (``mode`` "relay") or over
    direct connections ("floor"). Everything started here is stopped here."""
    result = {"mode": mode}
    loop = Loop()
    relay = fabric = None
    try:
        if mode == "relay":
            relay = RelayProcess([g for g, _ in case.groups], workdir, case.name,
                                 max_connections=max(1000, case.node_count + 100), profile=profile,
                                 cpus=relay_cpus)
            relay.start()
            result["relay_cmd_port"] = relay.port
        fabric = make_fabric(mode, loop, relay.port if relay else None)
        began = time.monotonic()
        nodes = fabric.wire(case.groups, case.links)
        result["setup_s"] = time.monotonic() - began
        relay_cpu0 = relay.cpu_seconds() if relay else None
        gen_cpu0 = time.process_time()
        wall0 = time.monotonic()
        result.update(case.drive(loop, fabric, nodes, **case.params))
        wall = time.monotonic() - wall0
        result["wall_s"] = wall
        result["generator_cpu_pct"] = 100.0 * (time.process_time() - gen_cpu0) / wall
        if relay:
            cpu = relay.cpu_seconds() - relay_cpu0
            result["relay_cpu_s"] = cpu
            result["relay_cpu_pct"] = 100.0 * cpu / wall
        result["connections_lost"] = len(loop.lost)
        if loop.lost:
            result["lost_example"] = "{}: {}".format(*loop.lost[0])
    except Exception as exc:            # recorded; the other cases still run
        result["error"] = str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
            type(exc).__name__, exc)
    finally:
        try:
            if relay is not None and relay.alive():
                memory = relay.memory_kib()
                result["relay_peak_rss_mib"] = memory.get("VmHWM", 0) / 1024
                result["relay_rss_end_mib"] = memory.get("VmRSS", 0) / 1024
                result["relay_cpu_total_s"] = relay.cpu_seconds()
            elif relay is not None and relay.proc is not None:
                result.setdefault("error", "the relay exited early (status {})".format(
                    relay.proc.returncode))
        finally:
            loop.close()
            if fabric is not None:
                fabric.close()
            if relay is not None:
                relay.stop()
                problems = relay.problems()
                if problems:
                    result["relay_output"] = problems[:20]
    return result
