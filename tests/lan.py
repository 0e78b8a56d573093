"""A simulated classroom LAN for the tests: network namespaces joined by a bridge.

Each "computer" is a network namespace with its own loopback and one
Ethernet card (a veth pair) plugged into a bridge, the "switch", which lives
in a namespace of its own: nothing here touches the machine's own network.
Addresses come from LAN_PREFIX, a private /24 used only inside these
namespaces, so discovery broadcasts (to LAN_PREFIX.255) really cross the
switch, as on a school's network.

    lan = Lan()                         # the switch
    minji = lan.computer()              # 10.216.16.11, 10.216.16.12, ...
    relay = minji.relay(["pong_game"], name="minji-pc")   # an in-process Relay there
    minji.run(nethelper.find_relays)    # a function run in that namespace
    minji.popen([python, "pong_net.py"])                  # a process run there
    lan.tear_down()                     # processes, relays, namespaces: all gone

Needs root (ip netns); Lan.available() says whether it can be had. The
namespaces' names carry the process id and a counter, so parallel test
workers never share one.
"""
import ctypes
import itertools
import os
import shutil
import subprocess
import threading

import nethelper

LAN_PREFIX = "10.216.16"            # the /24 the namespaces use, and nothing else
CLONE_NEWNET = 0x40000000
_counter = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def available():
    """None if namespaces can be made here, else why not (for pytest.skip)."""
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = "nhlan-probe-%d" % os.getpid()
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return "cannot make a network namespace: " + made.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class Lan:
    """One switch and the computers plugged into it (see the module's text)."""

    def __init__(self):
        self.tag = "nhlan-%d-%d" % (os.getpid(), next(_counter))
        self.switch = self.tag + "-sw"
        self.computers = []
        self.namespaces = []
        try:
            self._add_namespace(self.switch)
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.tear_down()
            raise

    def _add_namespace(self, name):
        self.namespaces.append(name)        # (first: torn down even if "add" half failed)
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")

    def computer(self):
        number = len(self.computers) + 1
        computer = Computer(self, "%s-%d" % (self.tag, number),
                            "%s.%d" % (LAN_PREFIX, 10 + number))
        self.computers.append(computer)
        return computer

    def tear_down(self):
        for computer in self.computers:
            computer.stop_all()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        self.namespaces.clear()


class Computer:
    """A namespace with one address on the LAN."""

    def __init__(self, lan, namespace, address):
        self.namespace, self.address = namespace, address
        self.processes, self.relays = [], []
        lan._add_namespace(namespace)
        port = "p%d" % (len(lan.computers) + 1)
        ip("-n", lan.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", namespace)
        ip("-n", lan.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", namespace, "addr", "add", address + "/24", "brd", "+", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")

    def run(self, function, *args, **kwargs):
        """function(*args, **kwargs) called in this computer's namespace (in a
        thread that entered it): sockets it makes stay in the namespace."""
        result = {}

        def inside():
            try:
                fd = os.open("/var/run/netns/" + self.namespace, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                finally:
                    os.close(fd)
                result["value"] = function(*args, **kwargs)
            except BaseException as exc:        # handed to the caller
                result["error"] = exc
        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def relay(self, groups, **options):
        """A Relay listening in this namespace (all addresses, the default
        port unless told), serving in a background thread."""
        options.setdefault("host", None)
        relay = nethelper.Relay(groups, **options)
        self.run(relay.start)
        relay.run_in_background()
        self.relays.append(relay)
        return relay

    def popen(self, argv, **options):
        """A process started in this namespace; stopped by tear_down()."""
        options.setdefault("stdout", subprocess.PIPE)
        options.setdefault("stderr", subprocess.STDOUT)
        options.setdefault("text", True)
        process = subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv], **options)
        self.processes.append(process)
        return process

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            try:
                process.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError):
                pass
        for relay in self.relays:
            relay.stop()
