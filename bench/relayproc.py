"""Start the relay as a subprocess with its real command line, watch it, stop it.

CPU time comes from /proc/<pid>/stat (utime + stime) and memory from
/proc/<pid>/status (VmHWM: the peak resident set size, and VmRSS).
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

from loadgen import HOST, ROOT, BenchError

NETHELPER = os.path.join(ROOT, "nethelper.py")
BAREHOP = os.path.join(ROOT, "bench", "barehop.py")
_TICKS = os.sysconf("SC_CLK_TCK")
ORIGINAL_CPUS = os.sched_getaffinity(0)      # before run.py --pin narrows this process


def die_with_parent():
    """For Popen(preexec_fn=...): the child gets SIGTERM if the benchmark dies,
    even by SIGKILL, so no relay or player outlives it (Linux; else a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def set_cpus(pid, cpus):
    """Run ``pid`` on ``cpus`` only (None: leave it to the OS)."""
    if cpus:
        os.sched_setaffinity(pid, cpus)


class RelayProcess:
    """``python nethelper.py -f GROUPS_FILE -p 0 -i 127.0.0.1 -q --max-connections N`` (quotas raised).

    Port 0 lets the OS choose a free port; it is read from the banner. The
    relay's output goes to a file (never a pipe that could fill and block it).
    With ``profile`` (a path) the relay runs under ``python -m cProfile -o``.
    """

    what = "relay"

    def __init__(self, groups, workdir, tag, max_connections=1000, profile=None, cpus=None,
                 default_quotas=False, stats=None):
        self.groups = list(groups)
        self.default_quotas = default_quotas    # as a teacher runs it (the flood at its quota)
        self.stats = stats                      # --stats FILE: the relay's own loop figures
        self.cpus = cpus
        self.workdir = workdir
        self.tag = tag
        self.max_connections = max_connections
        self.profile = profile
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, tag + ".relay.log")
        self._log = None

    @property
    def pid(self):
        return self.proc.pid

    def command(self):
        """The command line that starts it (it writes its groups file first)."""
        groups_file = os.path.join(self.workdir, self.tag + ".groups")
        with open(groups_file, "w", encoding="utf-8") as file:
            file.write("\n".join(self.groups) + "\n")
        command = [sys.executable]
        if self.profile:
            command += ["-m", "cProfile", "-o", self.profile]
        command += [NETHELPER, "-f", groups_file, "-p", "0", "-i", HOST, "-q",
                    "--max-connections", str(self.max_connections)]
        if self.stats:
            command += ["--stats", self.stats]
        if self.default_quotas:
            return command
        # The flood cases send far more than one game's share on purpose, and
        # the bench measures forwarding: the per-sender quotas are raised out
        # of the way (their checks still run on every frame).
        return command + ["--quota-bytes", str(1 << 40), "--quota-frames", str(1 << 30)]

    def start(self, timeout=10.0):
        command = self.command()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        set_cpus(self.proc.pid, self.cpus or ORIGINAL_CPUS)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if "Server listening" in text:
                for line in text.splitlines():
                    if line.strip().startswith("Port:"):
                        self.port = int(line.split()[-1])
                        return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise BenchError("the {} did not start: {!r}".format(self.what, self.output()[-500:]))

    def output(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as file:
                return file.read()
        except OSError:
            return ""

    def problems(self):
        """Lines the relay printed after its banner (with -q: warnings only)."""
        lines = self.output().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Server listening"):
                lines = lines[i + 1:]
                break
        return [l for l in lines if l.strip() and not l.startswith("Server stopped")]

    def cpu_seconds(self):
        """User + system CPU time the relay has used so far."""
        with open("/proc/{}/stat".format(self.pid)) as file:
            text = file.read()
        fields = text[text.rindex(")") + 2:].split()     # fields[0] is field 3 (state)
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def cpu_wait_seconds(self):
        """Time the relay's main thread has spent ready to run but waiting for
        a CPU (run_delay, /proc/PID/schedstat): how much other programs held
        it up. None where the kernel does not keep it."""
        try:
            with open("/proc/{}/schedstat".format(self.pid)) as file:
                return int(file.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None

    def sleeps(self):
        """How many times the relay has gone to sleep waiting for something
        (voluntary context switches, /proc/PID/status, every thread)."""
        total = 0
        try:
            for task in os.listdir("/proc/{}/task".format(self.pid)):
                with open("/proc/{}/task/{}/status".format(self.pid, task)) as file:
                    for line in file:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
        except (OSError, ValueError):
            return None
        return total

    def memory_kib(self):
        """{"VmHWM": peak RSS, "VmRSS": current RSS} in KiB."""
        found = {}
        with open("/proc/{}/status".format(self.pid)) as file:
            for line in file:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    found[key] = int(value.split()[0])
        return found

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM (the relay's clean stop; cProfile then writes its file),
        then SIGKILL if it has not gone within ``timeout`` seconds."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return self.proc.returncode


class BareHopProcess(RelayProcess):
    """``python bench/barehop.py TARGET_PORT``: the bare-hop reference (see
    barehop.py), watched and stopped like a relay."""

    what = "bare hop"

    def __init__(self, target_port, workdir, tag, cpus=None):
        super().__init__([], workdir, tag + ".hop", cpus=cpus)
        self.target_port = target_port

    def command(self):
        return [sys.executable, BAREHOP, str(self.target_port)]


class ReferenceRelayProcess(RelayProcess):
    """A reference relay (``bench/minrelay.py``, asyncio, or
    ``bench/epollrelay.py``, a bare epoll loop): same framing as nethelper,
    no rules, any group. Watched and stopped like the relay."""

    SCRIPTS = {"asyncio": "minrelay.py", "epoll": "epollrelay.py"}

    def __init__(self, kind, workdir, tag, backlog=1024, cpus=None):
        super().__init__([], workdir, "{}.{}".format(tag, kind), cpus=cpus)
        self.what = "{} reference relay".format(kind)
        self.script = os.path.join(ROOT, "bench", self.SCRIPTS[kind])
        self.backlog = backlog

    def command(self):
        return [sys.executable, self.script, "-p", "0", "-i", HOST, "--backlog", str(self.backlog)]


def listen_backlog(port):
    """The backlog of the socket listening on 127.0.0.1:``port``, as ``ss``
    shows it (Send-Q of a LISTEN socket), or None if ``ss`` cannot tell."""
    try:
        out = subprocess.run(["ss", "-ltnH", "sport = :{}".format(port)], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN" and fields[3].endswith(":{}".format(port)):
            return int(fields[2])
    return None


def listen_overflows():
    """TcpExt ListenOverflows so far: connection attempts (SYNs and
    handshake ACKs, retries included) that listening sockets dropped because
    their accept queue was full. For this network namespace, every program in
    it; from /proc/net/netstat; None if unreadable."""
    try:
        with open("/proc/net/netstat") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[0::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table["ListenOverflows"]) if "ListenOverflows" in table else None
    return None
