"""The join storm: 1,000 clients connect and join at the same instant (a school logging in).

Two generator processes (forked, as in pairs.py) each open half of the
clients at a shared instant: non-blocking ``connect`` for all of them in a
tight loop, AUTH as soon as each connection is up, and the client is in when
a PEERS frame naming it arrives. Groups of two (client i of each process in
group ``s<i>``), so the relay has 500 groups for 1,000 clients. The figure is
the time from the shared instant to the last client in; also the median
client, how many made it within the time limit, the listen backlog of the
relay's socket (from ``ss``) and the kernel's count of connection attempts
dropped because an accept queue was full (TcpExt ListenOverflows from
/proc/net/netstat, retries included: counted for every program on the
machine, so another program's overflows would show up here too).

A connection whose SYN the kernel drops (accept queue full) is retried by
the client's kernel after 1 s, then 3 s: so a backlog too small for the storm
shows up as a last join just over 1 s.
"""

import errno
import json
import select
import socket
import time

from loadgen import HEADER_SIZE, HOST, PEERS, SYSM, BenchError, auth_frame
from pairs import HEADER, Children, child_main, relay_cpu, start_relay
from relayproc import listen_backlog, listen_overflows

clock = time.perf_counter_ns
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT


class _Client:
    __slots__ = ("sock", "name", "group", "joined_ns", "data")

    def __init__(self, sock, name, group):
        self.sock, self.name, self.group = sock, name, group
        self.joined_ns = None
        self.data = b""


def _storm_child(conn, side, port, clients, start_ns, limit_s):
    epoll = select.epoll()
    by_fd = {}
    name = "a" if side == 0 else "b"
    failed = []
    try:
        conn.send(("ready", None))
        while clock() < start_ns:
            time.sleep(max(0.0, min(0.05, (start_ns - clock()) / 1e9)))
        for i in range(clients):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((HOST, port))
            if code not in (0, errno.EINPROGRESS):
                failed.append("connect: {}".format(errno.errorcode.get(code, code)))
                sock.close()
                continue
            client = _Client(sock, name, "s{}".format(i))
            by_fd[sock.fileno()] = client
            epoll.register(sock.fileno(), EPOLLOUT)
        waiting = len(by_fd)
        end = start_ns + int(limit_s * 1e9)
        while waiting and clock() < end:
            for fd, events in epoll.poll(0.05):
                client = by_fd[fd]
                if client.joined_ns is not None:
                    continue
                if events & EPOLLOUT:
                    code = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        failed.append("connect: {}".format(errno.errorcode.get(code, code)))
                        epoll.unregister(fd)
                        waiting -= 1
                        continue
                    client.sock.send(auth_frame(client.name, client.group))
                    epoll.modify(fd, EPOLLIN)
                elif events & EPOLLIN:
                    verdict = _read(client)
                    if verdict:
                        epoll.unregister(fd)
                        waiting -= 1
                        if verdict != "in":
                            failed.append(verdict)
        times = sorted(c.joined_ns - start_ns for c in by_fd.values() if c.joined_ns is not None)
        conn.send(("result", {"joined_ns": times, "failed": failed[:5], "failures": len(failed),
                              "attempted": clients}))
        conn.poll(60)               # the parent says when to let go of the connections
    finally:
        for client in by_fd.values():
            client.sock.close()
        epoll.close()


storm_child = child_main(_storm_child)


def _read(client):
    """Read what arrived; "in" once a PEERS frame names the client, a reason
    if the relay refused or closed it, None to keep waiting."""
    try:
        chunk = client.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        return "recv: {}".format(exc)
    if not chunk:
        return "closed by the relay"
    data = client.data + chunk
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        length, _version, _dest, _sender, frame_type, _meta = HEADER.unpack_from(data, pos)
        if length < HEADER_SIZE:
            return "bad frame"
        if pos + length > len(data):
            break
        payload = data[pos + HEADER_SIZE:pos + length]
        if frame_type == PEERS and any(p.get("name") == client.name for p in json.loads(payload)):
            client.joined_ns = clock()
            return "in"
        if frame_type == SYSM:
            message = json.loads(payload)
            if message.get("type") == 1:
                return "refused: {}".format(message.get("msg"))
        pos += length
    client.data = data[pos:]
    return None


def run_storm_once(kind, clients, workdir, limit_s=10.0, relay_cpus=None):
    """``clients`` clients (half per generator process) join a fresh relay of
    ``kind`` at once. Figures in ms from the shared instant."""
    result = {"kind": kind, "clients": clients, "limit_s": limit_s}
    relay = children = None
    per_side = clients // 2
    try:
        relay = start_relay(kind, workdir, "joinstorm", ["s{}".format(i) for i in range(per_side)],
                            clients, relay_cpus or relay_cpu())
        result["listen_backlog"] = listen_backlog(relay.port)
        start_ns = clock() + 300_000_000        # time for both children to be ready
        children = Children(storm_child, relay.port, per_side, start_ns, limit_s)
        children.wait("ready", 10)
        overflows0 = listen_overflows()
        sides = children.wait("result", limit_s + 10)
        overflows1 = listen_overflows()
        children.send("close", None)
        times = sorted(sides[0]["joined_ns"] + sides[1]["joined_ns"])
        joined = len(times)
        result.update(joined=joined, failures=sides[0]["failures"] + sides[1]["failures"],
                      failed_examples=(sides[0]["failed"] + sides[1]["failed"])[:5])
        # A client still out at the time limit counts as in at the limit: the
        # figure is then a lower bound, and a note says so.
        result["not_joined"] = 2 * per_side - joined
        result["last_ms"] = times[-1] / 1e6 if not result["not_joined"] else limit_s * 1e3
        everyone = times + [int(limit_s * 1e9)] * result["not_joined"]
        result["median_ms"] = everyone[len(everyone) // 2] / 1e6
        result["joined_by_0_2_s"] = sum(1 for t in times if t <= 200_000_000)
        if overflows0 is not None and overflows1 is not None:
            result["listen_overflows"] = overflows1 - overflows0
        if result["failures"]:
            result["error"] = "{} client(s) could not join, e.g. {}".format(
                result["failures"], result["failed_examples"][0])
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
