"""What nethelper costs a game: NetNode.process_recv() + process_send() per frame.

Two real NetNodes ("host" and "guest") join a real relay subprocess and play
Pong's traffic: each sends ``bar_pos`` [x, y] every frame, and the host also
sends ``ball_pos`` {"center": [x, y], "vel": [vx, vy]}.

1. **Paced**: each node runs in its own process, like two games, at 60 frames
   per second (sleeping between frames), and times process_recv() +
   process_send() every frame. This is the figure judged against the target.
2. **Busy**: the same, but each player spins between frames instead of
   sleeping, so its CPU never idles (as in a game busy drawing). On some
   machines, virtual ones especially, the first system calls after an idle
   sleep are several times slower; the two figures side by side show how
   much of the cost is that, and how much is NetNode's own work.
3. **Backlog**: the guest stops reading while the host sends 1,000 frames,
   then one process_recv() that takes in the whole backlog is timed.
4. **Bare**: in the paced run of 1, every other block of 30 frames makes
   only the system calls NetNode makes (recv until a read comes back short,
   one send of a frame of the same size) on the same socket, with no NetNode
   code: what the operating system charges for one frame's networking on
   this machine, the least any node could cost. NetNode's own share is the
   difference; taking turns makes both see the same moments of the machine.

Run as a script (``nodecost.py --role host --port P ...``) it is one paced
player and prints its figures as JSON.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

from loadgen import HOST, RECV_SIZE, BenchError
from relayproc import ORIGINAL_CPUS, RelayProcess, die_with_parent, set_cpus
from scenarios import latency_summary

from nethelper import NetNode, data_frame, encode_message

FRAME_BUDGET_US = 1e6 / 60          # 16,667 us
SHORT_READ = 64 * 1024              # NetNode stops reading after a read shorter than this
BARE_BLOCK = 30                     # frames in a row with NetNode, then with the bare calls
GROUP = "pong"


def _ball(frame):
    """A ball bouncing around an 800 x 600 court, as floats like a game's."""
    vx, vy = 5.0, 3.5
    x = 400 + 380 * math.sin(frame * vx / 380)
    y = 300 + 280 * math.sin(frame * vy / 280)
    return {"center": [round(x, 2), round(y, 2)], "vel": [vx, vy]}


def _wait_for_peers(nodes, count=2, limit=5.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        for node in nodes:
            node.process_recv()
            node.process_send()
        if all(len(node.get_peers()) >= count for node in nodes):
            return
        time.sleep(0.005)
    raise BenchError("the NetNodes did not see each other within {:g} s".format(limit))


def _game_frame(node, me, other, frame):
    """One frame of Pong's networking: returns (ns in process_recv + process_send,
    ns in process_recv, whether a new bar_pos came)."""
    t0 = time.perf_counter_ns()
    node.process_recv()
    t1 = time.perf_counter_ns()
    got = node.get_msg(other, "bar_pos") is not None
    if me == "guest":
        node.get_msg(other, "ball_pos")
    node.send_msg(other, "bar_pos", [20 if me == "host" else 780, 300 + frame % 200])
    if me == "host":
        node.send_msg(other, "ball_pos", _ball(frame))
    t2 = time.perf_counter_ns()
    node.process_send()
    t3 = time.perf_counter_ns()
    return (t1 - t0) + (t3 - t2), t1 - t0, got


def _figures(costs, recv_parts, seen):
    figures = latency_summary(costs)
    if costs:
        figures["recv_p50_us"] = latency_summary(recv_parts)["p50_us"]
        for key in ("p50", "p99", "mean"):
            figures[key + "_pct_of_frame"] = 100 * figures[key + "_us"] / FRAME_BUDGET_US
    figures["bar_pos_frames_seen"] = seen
    return figures


# ---------------------------------------------------------------------------
# 1. One paced player (runs in a child process)
# ---------------------------------------------------------------------------

def _spin_until(moment):
    while time.monotonic() < moment:
        pass


def _bare_frame_maker(node, me, other):
    """For the bare frames: a function making one frame's system calls as
    NetNode makes them (recv until a read comes back short, one send of a
    frame of the same size), with no NetNode code around them. It uses
    NetNode's socket and addresses directly: a benchmark may look inside."""
    messages = [encode_message("bar_pos", [20 if me == "host" else 780, 300], False)]
    if me == "host":
        messages.append(encode_message("ball_pos", _ball(0), False))
    frame = data_frame(node._peers[other], node._my_addr, messages)
    sock = node._sock
    buffer = bytearray(RECV_SIZE)

    def bare_frame():
        t0 = time.perf_counter_ns()
        got = False
        try:
            while True:             # as NetNode reads: on until a short read
                size = sock.recv_into(buffer)
                got = got or size > 0
                if size < SHORT_READ:
                    break
        except BlockingIOError:
            pass
        t1 = time.perf_counter_ns()
        sock.send(frame)
        return time.perf_counter_ns() - t0, t1 - t0, got

    return bare_frame


def play(role, port, frames, start_at, busy=False):
    """Join, wait for the other player, then from ``start_at`` (a
    time.monotonic() value: the clock is system-wide) play ``frames`` frames
    at 60 fps, sleeping between frames (or spinning, with ``busy``).
    Sleeping, the player takes turns of BARE_BLOCK frames with NetNode and
    with the bare system calls, so that both see the same moments of the
    machine. Returns the figures (the bare frames' in "bare")."""
    other = "guest" if role == "host" else "host"
    node = NetNode()
    if not node.connect(HOST, role, GROUP, port=port):
        return {"error": "{} could not join: {}".format(role, node.error)}
    try:
        _wait_for_peers([node])
        bare_frame = _bare_frame_maker(node, role, other)
        period = 1 / 60
        # The two players do not share a frame clock: the guest runs half a frame later.
        begin = start_at + (period / 2 if role == "guest" else 0.0)
        costs, recv_parts, seen, late = [], [], 0, 0
        bare_costs, bare_recv_parts, bare_seen = [], [], 0
        for frame in range(frames):
            due = begin + frame * period
            wait = due - time.monotonic()
            if wait > 0:
                if busy:
                    _spin_until(due)
                else:
                    time.sleep(wait)
            elif wait < -period:
                late += 1
            if not busy and frame // BARE_BLOCK % 2:
                cost, recv_part, got = bare_frame()
                bare_costs.append(cost)
                bare_recv_parts.append(recv_part)
                bare_seen += got
                continue
            cost, recv_part, got = _game_frame(node, role, other, frame)
            costs.append(cost)
            recv_parts.append(recv_part)
            seen += got
            if not node.connected:
                return {"error": "{} lost its connection: {}".format(role, node.error)}
        figures = _figures(costs, recv_parts, seen)
        figures["late_frames"] = late
        if bare_costs:
            figures["bare"] = _figures(bare_costs, bare_recv_parts, bare_seen)
        return figures
    except BenchError as exc:
        return {"error": str(exc)}
    finally:
        node.disconnect()


def _run_players(port, frames, busy):
    """Start the two paced players as processes; always stop them."""
    start_at = time.monotonic() + 1.5
    command = [sys.executable, os.path.abspath(__file__), "--port", str(port),
               "--frames", str(frames), "--start-at", repr(start_at)]
    command += ["--busy", "--role"] if busy else ["--role"]
    procs = {}
    results = {}
    try:
        for role in ("host", "guest"):
            procs[role] = subprocess.Popen(command + [role], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           preexec_fn=die_with_parent)
            set_cpus(procs[role].pid, ORIGINAL_CPUS)     # players are never pinned
        limit = time.monotonic() + 1.5 + frames / 60 + 15
        for role, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=max(1.0, limit - time.monotonic()))
            except subprocess.TimeoutExpired:
                results[role] = {"error": "the {} player did not finish in time".format(role)}
                continue
            try:
                results[role] = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                results[role] = {"error": "the {} player failed: {}".format(role, (err or out)[-300:])}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    return results


# ---------------------------------------------------------------------------
# The whole scenario
# ---------------------------------------------------------------------------

def run_nodecost(workdir, frames=600, backlog=1000, repeats=5, profile=None, relay_cpus=None):
    result = {"mode": "relay", "frames": frames, "backlog_frames": backlog}
    relay = RelayProcess([GROUP], workdir, "nodecost", profile=profile, cpus=relay_cpus)
    host, guest = NetNode(), NetNode()
    try:
        relay.start()
        relay_cpu0 = relay.cpu_seconds()
        wall0 = time.monotonic()

        # -- 1, 2 and 4. paced, one process per player: sleeping (taking turns
        # with the bare system calls, so twice the frames), then busy
        for busy, suffix, count in ((False, "", 2 * frames), (True, "_busy", frames)):
            players = _run_players(relay.port, count, busy)
            for role in ("host", "guest"):
                result[role + suffix] = players.get(role, {"error": "no result"})
                if "error" in result[role + suffix]:
                    raise BenchError(result[role + suffix]["error"])
                if "bare" in result[role + suffix]:
                    result[role + "_bare"] = result[role + suffix].pop("bare")

        # -- 3. a 1,000-frame backlog, both nodes in this process ---------------
        for node, name in ((host, "host"), (guest, "guest")):
            if not node.connect(HOST, name, GROUP, port=relay.port):
                raise BenchError("NetNode {} could not join: {}".format(name, node.error))
        _wait_for_peers([host, guest])
        backlog_us = []
        incomplete = 0
        for rep in range(repeats):
            guest.process_recv()            # start from an empty inbox and socket
            guest.get_all_msgs("host", "bar_pos")
            guest.get_all_msgs("host", "ball_pos")
            marker = [21 + rep, 555]        # only the last frame carries it
            for i in range(backlog):
                position = marker if i == backlog - 1 else [20, 100 + i % 400]
                host.send_msg("guest", "bar_pos", position)
                host.send_msg("guest", "ball_pos", _ball(i))
                host.process_send()
            guest.process_send()            # a heartbeat if one is due; not timed
            end = time.monotonic() + 2.0
            time.sleep(0.2)                 # let the relay deliver it all
            while time.monotonic() < end:
                host.process_send()         # anything the socket did not take at once
                t0 = time.perf_counter_ns()
                guest.process_recv()
                took = time.perf_counter_ns() - t0
                last = guest.get_msg("host", "bar_pos")
                guest.get_msg("host", "ball_pos")
                if last == marker:
                    backlog_us.append(took / 1e3)
                    break
                incomplete += 1             # not all of it had arrived: go again
                time.sleep(0.2)
            if not (host.connected and guest.connected):
                raise BenchError("a NetNode lost its connection during the backlog test")
        result["backlog_us"] = backlog_us
        result["backlog_incomplete_tries"] = incomplete
        if backlog_us:
            ordered = sorted(backlog_us)
            result["backlog_median_us"] = ordered[len(ordered) // 2]
            result["backlog_max_us"] = ordered[-1]
            result["backlog_median_pct_of_frame"] = 100 * result["backlog_median_us"] / FRAME_BUDGET_US
            result["backlog_per_frame_us"] = result["backlog_median_us"] / backlog
        wall = time.monotonic() - wall0
        cpu = relay.cpu_seconds() - relay_cpu0
        result.update(wall_s=wall, relay_cpu_s=cpu, relay_cpu_pct=100 * cpu / wall)
    except Exception as exc:            # recorded, so that the report still comes out
        result["error"] = str(exc) if isinstance(exc, BenchError) else "{}: {}".format(
            type(exc).__name__, exc)
    finally:
        try:
            if relay.alive():
                memory = relay.memory_kib()
                result["relay_peak_rss_mib"] = memory.get("VmHWM", 0) / 1024
                result["relay_rss_end_mib"] = memory.get("VmRSS", 0) / 1024
        finally:
            host.disconnect()
            guest.disconnect()
            relay.stop()
            problems = relay.problems()
            if problems:
                result["relay_output"] = problems[:20]
    return result


def _main():
    parser = argparse.ArgumentParser(description="One paced Pong player (used by bench/run.py).")
    parser.add_argument("--role", choices=("host", "guest"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--busy", action="store_true", help="spin between frames, not sleep")
    args = parser.parse_args()
    print(json.dumps(play(args.role, args.port, args.frames, args.start_at, args.busy)), flush=True)


if __name__ == "__main__":
    _main()
