"""The traffic scenarios: pingpong, flood, classroom (and the school), fanout.

Each case is driven twice in the same run: once through a fresh relay
subprocess ("relay") and once over direct loopback connections with no relay
("floor"). ``measure()`` does one of those runs and returns its figures; every
loop in here is bounded in time (and count).

The latency cases (pingpong, classroom, fanout) run in TWO generator
processes: side A (pingers, the first node of each pair, the fanout caster)
here and side B (echoers, the second node of each pair, the fanout receivers)
in a forked child with its own selectors loop. On the floor B listens and A
connects; through the relay both connect to it. So a floor frame crosses one
process boundary (A -> B) and a relayed frame two (A -> relay -> B), as
between real nodes. The flood stays in one process (it is throughput-bound).

The pingpong and classroom cases also run a third time ("hop"): the floor's
links with the bare hop (barehop.py, a process that only passes bytes on) in
the middle. That is what one more process hop costs here before any relay
work.
"""

import heapq
import multiprocessing
import random
import time

from loadgen import (ALL, DATA, FLOOD, HEADER_SIZE, HOST, LATENCY, BenchError, Loop,
                     RelayFabric, SplitDirectFabric, make_fabric)
from relayproc import BareHopProcess, RelayProcess, die_with_parent

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

    def __init__(self, count, period_ns, start_ns, rng, keep=None):
        self.period = period_ns
        self.heap = [(start_ns + int(rng.random() * period_ns), i) for i in range(count)]
        if keep is not None:        # this process's senders only, with the phases they'd have had
            self.heap = [(when, keep[i]) for when, i in self.heap if i in keep]
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

def side_pingpong(ctl, loop, fabric, nodes, side, epoch, start_ns, duration, max_trips=3_000_000):
    """Side A: the pingers (first node of each pair) measure round trips.
    Side B: the echoers send every frame straight back, until A says stop."""
    fmt = LATENCY
    (s0, s1), (t0, t1) = fmt.spans
    b0, b1 = fmt.bases
    template, length = fmt.fmt, fmt.length
    _pair_up(nodes, fmt)
    send = loop.send
    if side == "B":
        echoers = nodes[1::2]

        def echo(ep, frame_type, sender, buf, start, end):
            if frame_type == DATA:
                node = ep.node
                node.received += 1
                send(node.out, node.hdr + buf[start + HEADER_SIZE:end])

        loop.on_frame = echo
        ctl.wait("stop", timeout=duration + 15)
        return {"echoed": sum(n.received for n in echoers)}

    pingers = nodes[0::2]
    rtts = []
    running = [True]

    def ping(a):
        a.sent += 1
        send(a.out, a.hdr + template % (b0 + a.sent, b1 + clock() - epoch))

    def on_frame(ep, frame_type, sender, buf, start, end):
        if frame_type != DATA:
            return
        now = clock()
        node = ep.node
        if end - start != length or int(buf[start + s0:start + s1]) - b0 != node.sent:
            node.bad += 1
        rtts.append(now - epoch - (int(buf[start + t0:start + t1]) - b1))
        node.received += 1
        if running[0]:
            ping(node)

    loop.on_frame = on_frame
    while clock() < start_ns:           # side B installs its echo before then
        loop.poll(max(0.0, (start_ns - clock()) / 1e9))
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
    ctl.send("stop")
    figures = latency_summary(rtts)
    figures.update(trips=trips_in_window, window_s=window, trips_per_s=trips_in_window / window,
                   unanswered=sum(a.sent - a.received for a in pingers),
                   malformed=sum(a.bad for a in pingers))
    return figures


def merge_pingpong(a, b, nodes):
    a["echoed"] = b.get("echoed")
    return a


# ---------------------------------------------------------------------------
# flood: senders push 65-byte DATA frames as fast as they are taken
# ---------------------------------------------------------------------------

def drive_flood(loop, fabric, nodes, duration, window_frames=8192, batch=1024, drain_s=5.0):
    """Each sender keeps writing while its socket accepts, but never has more
    than ``window_frames`` frames unreceived (about 520 KiB): the relay drops
    a receiver with over 1 MiB waiting for it, and a flood without flow
    control would measure that, not throughput. After ``duration`` s, what
    is under way may take ``drain_s`` s to arrive (at the default quotas the
    relay passes a sender's frames on no faster than its quota)."""
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
        if frame_type == DATA:
            _count_frame(ep.node, buf, start, end, length, s0, s1, b0)

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
    drain_end = time.monotonic() + drain_s
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

def _latency_receiver(fmt, epoch, latencies):
    (s0, s1), (t0, t1) = fmt.spans
    b0, b1 = fmt.bases
    length = fmt.length

    def on_frame(ep, frame_type, sender, buf, start, end):
        if frame_type != DATA:
            return
        now = clock()
        if _count_frame(ep.node, buf, start, end, length, s0, s1, b0):
            latencies.append(now - epoch - (int(buf[start + t0:start + t1]) - b1))

    return on_frame


def _count_frame(node, buf, start, end, length, s0, s1, b0):
    """Count a received frame at ``node``: malformed (wrong length), or
    received and in or out of order by its sequence number (digits s0:s1,
    offset by b0). Returns False for a malformed frame."""
    if end - start != length:
        node.bad += 1
        return False
    seq = int(buf[start + s0:start + s1]) - b0
    if seq != node.expect:
        node.order_errors += 1
    node.expect = seq + 1
    node.received += 1
    return True


def side_pairs_periodic(ctl, loop, fabric, nodes, side, epoch, start_ns, duration, rate_hz, seed=1):
    """Both sides send (each its own node of every pair, on the slots the
    whole-run schedule gives it) and both receive and time what arrives."""
    fmt = LATENCY
    b0, b1 = fmt.bases
    template = fmt.fmt
    _pair_up(nodes, fmt)
    indices = range(0 if side == "A" else 1, len(nodes), 2)
    mine = [nodes[i] for i in indices]
    latencies = []
    loop.on_frame = _latency_receiver(fmt, epoch, latencies)
    figures = _run_schedule(loop, fabric, mine, duration, rate_hz, seed, start_ns,
                            lambda node, seq, now: loop.send(
                                node.out, node.hdr + template % (b0 + seq, b1 + now - epoch)),
                            count=len(nodes), keep={i: k for k, i in enumerate(indices)})
    ctl.send("sent", figures["sent"])
    (expected,) = ctl.wait("sent", timeout=15)
    _drain(loop, fabric, lambda: sum(n.received for n in mine) >= expected or bool(loop.lost), 2.0)
    figures.update(latencies=latencies, received=sum(n.received for n in mine))
    figures.update(_order_figures(mine))
    return figures


def merge_pairs_periodic(a, b, nodes):
    figures = _merge_send_figures([a, b])
    received = a["received"] + b["received"]
    figures.update(latency_summary(a.pop("latencies") + b.pop("latencies")))
    figures.update(received=received, lost=figures["sent"] - received,
                   delivered_per_s=received / figures["window_s"],
                   out_of_order=a["out_of_order"] + b["out_of_order"],
                   malformed=a["malformed"] + b["malformed"])
    return figures


def _run_schedule(loop, fabric, senders, duration, rate_hz, seed, start_ns, send_one,
                  count=None, keep=None):
    """Call ``send_one(node, seq, now_ns)`` for each sender at ``rate_hz`` for
    ``duration`` seconds from ``start_ns`` (the same instant in both
    processes); return the sending figures. With ``count`` and ``keep``
    (schedule index -> index in ``senders``), the phases are those of a
    schedule of ``count`` senders, of which this process plays ``keep``."""
    period = int(1e9 / rate_hz)
    schedule = Schedule(count or len(senders), period, start_ns, random.Random(seed), keep)
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
        loop.poll(max(0.0, min(schedule.wait_s(clock()), (end_ns - clock()) / 1e9, 0.05)))
        mono = time.monotonic()
        if mono >= next_keepalive:
            fabric.keepalive(mono)
            next_keepalive = mono + KEEPALIVE_EVERY
    window = (clock() - start_ns) / 1e9
    return {"rate_hz": rate_hz, "senders": len(senders), "window_s": window, "sent": sent,
            "target_sends": len(senders) * rate_hz * duration,
            "skipped_slots": schedule.skipped, "late_ns": schedule.late_ns}


def _merge_send_figures(sides):
    """One set of sending figures for the senders of both processes."""
    late = sorted(x for s in sides for x in s.pop("late_ns"))
    sent = sum(s["sent"] for s in sides)
    target = sum(s["target_sends"] for s in sides)
    return {"rate_hz": sides[0]["rate_hz"], "senders": sum(s["senders"] for s in sides),
            "window_s": max(s["window_s"] for s in sides), "sent": sent, "target_sends": target,
            "send_rate_pct": 100.0 * sent / target if target else 0.0,
            "skipped_slots": sum(s["skipped_slots"] for s in sides),
            "send_late_p99_ms": percentile(late, 99) / 1e6 if late else 0.0,
            "max_send_late_ms": late[-1] / 1e6 if late else 0.0}


# ---------------------------------------------------------------------------
# fanout: one node broadcasts to ALL (dest 255) of a big group
# ---------------------------------------------------------------------------

def side_fanout(ctl, loop, fabric, nodes, side, epoch, start_ns, duration, rate_hz, seed=1):
    """Side A: the caster (node 0) sends to ALL. Side B: every receiver."""
    fmt = LATENCY
    b0, b1 = fmt.bases
    template = fmt.fmt
    caster, receivers = nodes[0], nodes[1:]
    if side == "B":
        latencies = []
        loop.on_frame = _latency_receiver(fmt, epoch, latencies)
        (sent,) = ctl.wait("sent", timeout=duration + 15)
        expected = sent * len(receivers)
        _drain(loop, fabric,
               lambda: sum(n.received for n in receivers) >= expected or bool(loop.lost), 2.0)
        figures = {"latencies": latencies, "receivers": len(receivers),
                   "received": sum(n.received for n in receivers)}
        figures.update(_order_figures(receivers))
        return figures

    header = fmt.header(ALL, caster.addr)
    send = loop.send

    def broadcast(node, seq, now):
        frame = header + template % (b0 + seq, b1 + now - epoch)
        for ep in node.fan:            # one socket via the relay; one per receiver on the floor
            send(ep, frame)

    figures = _run_schedule(loop, fabric, [caster], duration, rate_hz, seed, start_ns, broadcast)
    ctl.send("sent", figures["sent"])
    return figures


def merge_fanout(a, b, nodes):
    figures = _merge_send_figures([a])
    expected = figures["sent"] * b["receivers"]
    received = b["received"]
    figures.update(latency_summary(b.pop("latencies")))
    figures.update(receivers=b["receivers"], expected=expected, received=received,
                   lost=expected - received,
                   completeness_pct=100.0 * received / expected if expected else 0.0,
                   out_of_order=b["out_of_order"], malformed=b["malformed"])
    return figures


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

class Case:
    """``drive`` runs the whole case in one process; or, with ``side_a`` (the
    node indices of side A), ``drive`` is a side driver (called once in each
    process with side "A" or "B") and ``merge(a, b, nodes)`` makes the case's
    figures from the two sides' figures."""

    def __init__(self, name, scenario, groups, links, drive, side_a=None, merge=None,
                 default_quotas=False, **params):
        self.name, self.scenario = name, scenario
        self.default_quotas = default_quotas    # the relay's own quotas, not raised
        self.groups, self.links = groups, links
        self.drive, self.params = drive, params
        self.side_a, self.merge = side_a, merge

    def sides(self):
        a = set(self.side_a)
        return a, set(range(self.node_count)) - a

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
                          side_pingpong, side_a=range(0, 2 * pairs, 2), merge=merge_pingpong,
                          duration=short or 3.0))
    for pairs in (1, 10):
        cases.append(Case("flood-{}".format(pairs), "flood", *_pairs("fl", pairs),
                          drive_flood, duration=short or 3.0))
    # The same flood at the relay's default quotas: every sender is slowed to
    # 1,000 frames a second, and nothing may be lost. 2,048 frames under way
    # per sender drain in about 2 s at that pace.
    cases.append(Case("flood-10-quota", "flood", *_pairs("fq", 10), drive_flood,
                      default_quotas=True, duration=short or 3.0, window_frames=2048,
                      drain_s=10.0))
    for groups, rate in ((15, 60), (100, 60), (500, 20)):
        cases.append(Case("classroom-{}".format(groups), "classroom", *_pairs("cl", groups),
                          side_pairs_periodic, side_a=range(0, 2 * groups, 2),
                          merge=merge_pairs_periodic, duration=short or 5.0, rate_hz=rate))
    for size in (50, 200):
        cases.append(Case("fanout-{}".format(size), "fanout", *_fan(size),
                          side_fanout, side_a=[0], merge=merge_fanout,
                          duration=short or 5.0, rate_hz=60))
    return cases


# ---------------------------------------------------------------------------
# One measured run
# ---------------------------------------------------------------------------

def _start_relay(case, workdir, profile, relay_cpus, result):
    relay = RelayProcess([g for g, _ in case.groups], workdir, case.name,
                         max_connections=max(1000, case.node_count + 100), profile=profile,
                         cpus=relay_cpus, default_quotas=case.default_quotas)
    relay.start()
    result["relay_cmd_port"] = relay.port
    return relay


def _relay_cpu_figures(result, relay, cpu0, wall):
    cpu = relay.cpu_seconds() - cpu0
    result["relay_cpu_s"] = cpu
    result["relay_cpu_pct"] = 100.0 * cpu / wall


def _relay_memory_figures(result, relay):
    """Peak memory of a relay still running; an error if it died early."""
    if relay is not None and relay.alive():
        memory = relay.memory_kib()
        result["relay_peak_rss_mib"] = memory.get("VmHWM", 0) / 1024
        result["relay_rss_end_mib"] = memory.get("VmRSS", 0) / 1024
        result["relay_cpu_total_s"] = relay.cpu_seconds()
    elif relay is not None and relay.proc is not None:
        result.setdefault("error", "the relay exited early (status {})".format(
            relay.proc.returncode))


def _stop_relay(result, relay):
    if relay is not None:
        relay.stop()
        problems = relay.problems()
        if problems:
            result["relay_output"] = problems[:20]


def measure(case, mode, workdir, profile=None, relay_cpus=None):
    """Run ``case`` once, through a fresh relay (``mode`` "relay"), over
    direct connections ("floor") or over the floor's connections through the
    bare hop ("hop", two-process cases only). Everything started here is
    stopped here."""
    if case.side_a is not None:
        return measure_split(case, mode, workdir, profile, relay_cpus)
    result = {"mode": mode}
    loop = Loop()
    relay = fabric = None
    try:
        if mode == "relay":
            relay = _start_relay(case, workdir, profile, relay_cpus, result)
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
            _relay_cpu_figures(result, relay, relay_cpu0, wall)
        result["connections_lost"] = len(loop.lost)
        if loop.lost:
            result["lost_example"] = "{}: {}".format(*loop.lost[0])
    except Exception as exc:            # recorded; the other cases still run
        result["error"] = str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
            type(exc).__name__, exc)
    finally:
        try:
            _relay_memory_figures(result, relay)
        finally:
            loop.close()
            if fabric is not None:
                fabric.close()
            _stop_relay(result, relay)
    return result


# ---------------------------------------------------------------------------
# Two generator processes
# ---------------------------------------------------------------------------

class Control:
    """The pipe between the two generator processes. Its end is watched by
    the local loop, so waiting for a message keeps serving the node sockets
    (and sending keepalives); messages are tuples ("kind", args...)."""

    def __init__(self, conn, loop, who):
        self.conn, self.loop, self.who = conn, loop, who
        self.fabric = None
        loop.add_control(conn)

    def send(self, kind, *args):
        self.conn.send((kind,) + args)

    def wait(self, kind, timeout):
        loop = self.loop
        end = time.monotonic() + timeout
        next_keepalive = 0.0
        while not loop.inbox:
            now = time.monotonic()
            if now >= end:
                raise BenchError("waited {:g} s for {!r} from the {}".format(timeout, kind, self.who))
            loop.poll(min(0.05, end - now))
            if self.fabric is not None and now >= next_keepalive:
                self.fabric.keepalive(now)
                next_keepalive = now + KEEPALIVE_EVERY
        message = loop.inbox.pop(0)
        if message[0] == "error":
            raise BenchError("{}: {}".format(self.who, message[1]))
        if message[0] == "eof":
            raise BenchError("the {} is gone".format(self.who))
        if message[0] != kind:
            raise BenchError("expected {!r} from the {}, got {!r}".format(kind, self.who, message[0]))
        return message[1:]


def _generator_figures(result, loop, cpu0, wall0):
    wall = time.monotonic() - wall0
    result["generator_cpu_pct"] = 100.0 * (time.process_time() - cpu0) / wall
    result["connections_lost"] = len(loop.lost)
    if loop.lost:
        result["lost_example"] = "{}: {}".format(*loop.lost[0])
    return wall


def _side_b_main(conn, case, mode, relay_port):
    """Side B, in the child process. Reports ("result", figures) or ("error", why)."""
    die_with_parent()
    loop = Loop()
    fabric = None
    try:
        ctl = Control(conn, loop, "first generator process")
        _, mine = case.sides()
        if mode == "relay":
            fabric = ctl.fabric = RelayFabric(loop, relay_port)
            ctl.wait("wire", timeout=60)
            nodes = fabric.wire(case.groups, case.links, mine=mine)
            ctl.send("wired", {i: nodes[i].addr for i in mine})
            (theirs,) = ctl.wait("addrs", timeout=30)
            for i, addr in theirs.items():
                nodes[i].addr = addr
        else:
            fabric = ctl.fabric = SplitDirectFabric(loop)
            ctl.send("listening", fabric.listen(case.links))
            nodes = fabric.accept_links(case.groups, case.links, mine)
            ctl.send("wired", {})
            ctl.wait("addrs", timeout=30)
        ctl.send("ready")
        epoch, start_ns = ctl.wait("go", timeout=60)
        cpu0, wall0 = time.process_time(), time.monotonic()
        figures = case.drive(ctl, loop, fabric, nodes, "B", epoch, start_ns, **case.params)
        _generator_figures(figures, loop, cpu0, wall0)
        conn.send(("result", figures))
        ctl.wait("done", timeout=60)    # keep the sockets open until A has all it waits for
    except BaseException as exc:        # also Ctrl-C / SIGTERM: tell the parent, then go
        try:
            conn.send(("error", str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
                type(exc).__name__, exc)))
        except (OSError, ValueError):
            pass
    finally:
        loop.close()
        if fabric is not None:
            fabric.close()
        conn.close()


def measure_split(case, mode, workdir, profile=None, relay_cpus=None):
    """``measure()`` for a case played by two generator processes: side A
    here, side B in a forked child (stopped here, whatever happens)."""
    result = {"mode": mode, "generator_processes": 2}
    relay = hop = fabric = proc = conn = None
    loop = None
    finished = False
    try:
        if mode == "relay":
            relay = _start_relay(case, workdir, profile, relay_cpus, result)
        # Fork before this process opens any node socket, so the child holds none of them.
        ctx = multiprocessing.get_context("fork")
        conn, child_conn = ctx.Pipe()
        proc = ctx.Process(target=_side_b_main, args=(child_conn, case, mode,
                                                      relay.port if relay else None),
                           name="bench-side-b", daemon=True)
        proc.start()
        child_conn.close()
        loop = Loop()
        ctl = Control(conn, loop, "second generator process")
        mine, _ = case.sides()
        began = time.monotonic()
        if mode == "relay":
            # A joins first, then B: addresses come out in the same order as the floor's.
            fabric = ctl.fabric = RelayFabric(loop, relay.port)
            nodes = fabric.wire(case.groups, case.links, mine=mine)
            ctl.send("wire")
            (theirs,) = ctl.wait("wired", timeout=90)
            for i, addr in theirs.items():
                nodes[i].addr = addr
            ctl.send("addrs", {i: nodes[i].addr for i in mine})
        else:
            fabric = ctl.fabric = SplitDirectFabric(loop)
            (where,) = ctl.wait("listening", timeout=30)
            if mode == "hop":       # the floor's links, through the bare hop
                hop = BareHopProcess(where[1], workdir, case.name, cpus=relay_cpus)
                hop.start()
                where = (HOST, hop.port)
            nodes = fabric.connect_links(case.groups, case.links, mine, where)
            ctl.wait("wired", timeout=60)
            ctl.send("addrs", {})
        ctl.wait("ready", timeout=30)
        result["setup_s"] = time.monotonic() - began
        epoch = clock()
        start_ns = epoch + 20_000_000       # both sides' schedules start here
        ctl.send("go", epoch, start_ns)
        middle = relay or hop        # the process between the two sides, if any
        middle_cpu0 = middle.cpu_seconds() if middle else None
        cpu0, wall0 = time.process_time(), time.monotonic()
        figures = case.drive(ctl, loop, fabric, nodes, "A", epoch, start_ns, **case.params)
        (theirs,) = ctl.wait("result", timeout=60)
        wall = _generator_figures(figures, loop, cpu0, wall0)
        ctl.send("done")
        finished = True
        result.update(case.merge(figures, theirs, nodes))
        result["wall_s"] = wall
        cpu_a, cpu_b = figures["generator_cpu_pct"], theirs["generator_cpu_pct"]
        result["generator_cpu_pct"] = max(cpu_a, cpu_b)     # the busier of the two
        result["generator_cpu_pct_sides"] = [cpu_a, cpu_b]
        lost = figures["connections_lost"] + theirs["connections_lost"]
        result["connections_lost"] = lost
        if lost:
            result["lost_example"] = figures.get("lost_example") or theirs.get("lost_example")
        if middle:
            _relay_cpu_figures(result, middle, middle_cpu0, wall)
    except Exception as exc:            # recorded; the other cases still run
        result["error"] = str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
            type(exc).__name__, exc)
    finally:
        try:
            _relay_memory_figures(result, relay or hop)
        finally:
            try:
                if conn is not None:
                    conn.close()
                if proc is not None:
                    if not finished and proc.is_alive():
                        proc.terminate()        # an error or Ctrl-C here: stop B now
                    proc.join(5)
                    if proc.is_alive():
                        proc.terminate()
                        proc.join(5)
                    if proc.is_alive():
                        proc.kill()
                        proc.join(5)
            finally:
                if loop is not None:
                    loop.close()
                if fabric is not None:
                    fabric.close()
                _stop_relay(result, relay or hop)
    return result
