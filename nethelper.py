#!/usr/bin/env python3
"""nethelper: simple networking for two-player (and many-player) games.

One file, standard library only. It does two jobs:

* **The relay.** Run ``python nethelper.py -g pong_game`` on one computer.
  Games connect to it over TCP, join a named *group*, and the relay passes
  every message on to the other members of that group.

* **The node.** A game does ``from nethelper import NetNode`` and talks to
  the relay::

      net = NetNode()
      if not net.connect("localhost", "Player1", "pong_game"):
          print(net.error)            # why it failed, in plain words
      net.send_msg("ALL", "bar_pos", [20, 250])
      net.process_send()              # call both of these once per frame
      net.process_recv()
      position = net.get_msg("Player2", "bar_pos")   # None if nothing new

Messages travel as JSON, so content may be numbers, strings, True/False/None,
lists and dicts. Tuples arrive as lists.

The wire format is nethelper protocol "020" (see docs/PROTOCOL.md), the one
spoken by the original public nethelper module, so this relay serves the
original's nodes and this NetNode joins the original's relay.

The file reads top to bottom: protocol constants, the frame codec (pure
functions and a frame reader that never touch a socket), NetNode (driving
NodeCore, the node's side of the protocol without sockets), the relay
(Relay, the network loop, driving RelayCore, its rules without sockets), the
tools for a classroom (--find, --check, --watch), the teacher's board
(Board: a web page of the relay, ``--board``), the command line, and last
the board's page itself (HTML in a string, so that this file still works
alone).
"""

import argparse
import collections
import errno
import hmac
import inspect
import itertools
import json
import logging
import os
import random
import re
import secrets
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

# One plain sentence instead of a traceback further down (Python 3.6 and 3.7
# lack socket.create_server, for one). 3.8 is what the Mu editor bundles.
if sys.version_info < (3, 8):
    sys.exit("nethelper needs Python 3.8 or newer, but this is Python %d.%d. "
             "Install a newer Python from https://www.python.org" % sys.version_info[:2])

__version__ = "1.0.0"

__all__ = [
    "NetNode", "NodeCore", "Relay", "RelayCore", "RelayError", "ProtocolError", "FrameReader",
    "Frame",
    "encode_frame", "encode_json", "decode_json", "DEFAULT_PORT", "main",
    "find_relays", "check_relay", "CheckResult",
]

log = logging.getLogger("nethelper")


# ---------------------------------------------------------------------------
# Protocol constants
# ---------------------------------------------------------------------------

PROTOCOL_VERSION = b"020"
DEFAULT_PORT = 65042
DEFAULT_GROUP = "pong_game"      # what a relay started without -g or -f serves
HEADER_SIZE = 11
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024

# Frame types
AUTH, DATA, HEART, PEERS, REQ, SYSM = 1, 2, 3, 4, 5, 6

# Addresses: the relay is 0, nodes are 1..254. As a sender 255 means "I don't
# know my address yet"; as a destination it means "everyone in my group but me".
RELAY_ADDR = 0
UNKNOWN_ADDR = 255
ALL_ADDR = 255
MAX_NODES_PER_GROUP = 254
MAX_OBSERVERS = 4             # observers (watchers) per group; they are not players

# REQ types (node -> relay) and SYSM types (relay -> node). REQ 2-3 and SYSM
# 1-7 are this project's additions; an original node ignores them.
REQ_LEAVE, REQ_PEERS, REQ_STATUS, REQ_PING = 0, 1, 2, 3
(SYSM_NAME, SYSM_REFUSED, SYSM_WARNING, SYSM_GOODBYE, SYSM_STATUS, SYSM_PLAYERS,
 SYSM_PONG, SYSM_MESSAGE) = range(8)

# Why a relay refuses a node (the "msg" of SYSM type 1). They are also the
# values of NetNode.error_code after such a refusal.
NAME_TAKEN = "name_taken"
UNKNOWN_GROUP = "unknown_group"
GROUP_FULL = "group_full"
BAD_REQUEST = "bad_request"
SERVER_FULL = "server_full"
WRONG_VERSION = "version"
GROUP_LOCKED = "group_locked"    # the teacher locked the group (the board): no new players
KICKED = "kicked"                # also a goodbye: the teacher removed this game (the board)

# Why a relay closes a member's connection (the "msg" of SYSM type 3), or
# warns it first (SYSM type 2); TIMEOUT below is one of them too. A goodbye's
# reason becomes the NetNode.error_code as it is.
OVER_QUOTA = "over_quota"
BAD_FRAME = "bad_frame"
RELAY_STOPPING = "relay_stopping"

# NetNode.error_code values that come from the node itself, not from a relay.
NO_RELAY = "no_relay"            # nothing listens at that address and port
TIMEOUT = "timeout"              # a time limit ran out: the relay did not answer in time,
                                 # or (a goodbye's reason) dropped a member silent too long
BAD_ADDRESS = "bad_address"      # the host name does not resolve
CLOSED_WHILE_JOINING = "closed"  # closed while joining, without a reason (an original relay)
LOST = "lost"                    # the connection broke (or went silent) after joining
PROTOCOL = "protocol"            # the relay sent bytes this node cannot read

# CheckResult.code values beyond NO_RELAY, TIMEOUT and BAD_ADDRESS above.
RELAY_OK = "ok"                  # this project's relay answered its status
OLD_RELAY = "old_relay"          # a relay that does not answer status requests
NOT_A_RELAY = "not_relay"        # something else listens there
UNREACHABLE = "unreachable"      # the network itself said no (no route, ...)

MAX_NAME_LENGTH = 100
HEARTBEAT_INTERVAL = 1.0      # a node with nothing to say sends HEART this often, and so
                              # does this relay to a member it has sent nothing else
LIVENESS_TIMEOUT = 5.0        # the relay drops a node silent for this long

# Discovery (UDP, same port number as the relay's TCP port): a query is the
# prefix, a version number and a line break, padded with zero bytes to
# DISCOVERY_QUERY_SIZE; the answer is never longer than the query, so a forged
# sender address cannot turn a relay into an amplifier.
DISCOVERY_QUERY_PREFIX = b"nethelper-find/"
DISCOVERY_ANSWER_PREFIX = b"nethelper-here/1\n"
DISCOVERY_VERSION = 1
DISCOVERY_QUERY_SIZE = 1200

# Layout of the 11-byte header: length, version, dest, sender, type, meta.
_HEADER = struct.Struct(">I3sBBBB")
_LENGTH = struct.Struct(">I")
_RECV_SIZE = 256 * 1024       # read up to this much per recv_into() call
_SMALL_READ = 64 * 1024       # a node's read this short emptied its socket: stop there

# The selector every socket loop here waits in (NetNode's, the relay's): the
# system's best (epoll, kqueue, ...), or select(), the one Windows has, when
# the environment variable NETHELPER_SELECTOR is "select". Tests run Windows'
# path on Linux that way, or by setting SELECTOR (read each time a loop starts).
SELECTOR = (selectors.SelectSelector if os.environ.get("NETHELPER_SELECTOR") == "select"
            else selectors.DefaultSelector)


def _new_selector():
    return SELECTOR()


# ---------------------------------------------------------------------------
# Frame codec: bytes in, bytes out, no sockets (used by relay and node alike)
# ---------------------------------------------------------------------------

class ProtocolError(ValueError):
    """Bytes that do not follow the protocol.

    ``code`` says what kind of problem it is: ``"version"`` for a frame of
    another protocol version, ``"bad_frame"`` for broken framing and
    ``"bad_payload"`` for a payload that is not what its frame type needs.
    """

    def __init__(self, message, code="bad_frame"):
        super().__init__(message)
        self.code = code


class Frame:
    """One received frame: the header fields as ints, and the raw bytes.

    ``raw`` is the whole frame exactly as it arrived, so a relay can forward
    it without building it again; ``payload`` is the part after the header.
    """

    __slots__ = ("type", "dest", "sender", "meta", "raw")

    def __init__(self, frame_type, dest, sender, meta, raw):
        self.type = frame_type
        self.dest = dest
        self.sender = sender
        self.meta = meta
        self.raw = raw

    @property
    def payload(self):
        return self.raw[HEADER_SIZE:]

    def __repr__(self):
        return "Frame(type={}, dest={}, sender={}, {} bytes)".format(
            self.type, self.dest, self.sender, len(self.raw))


def encode_frame(frame_type, dest, sender, payload=b""):
    """Return the bytes of one frame. ``payload`` is already-encoded bytes."""
    header = _HEADER.pack(HEADER_SIZE + len(payload), PROTOCOL_VERSION,
                          dest, sender, frame_type, 0)
    return header + payload


def encode_json(value):
    """Encode ``value`` as compact JSON bytes.

    Raises TypeError for things JSON cannot carry (sets, objects, bytes...)
    and ValueError for NaN, infinity and circular references.
    """
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_json(payload):
    """Decode JSON bytes, raising ProtocolError if they are not valid JSON."""
    try:
        return json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError("payload is not UTF-8 JSON ({})".format(exc),
                            "bad_payload") from None


class FrameReader:
    """Cuts a byte stream into frames.

    Feed it whatever ``recv()`` returned, then iterate over it to get every
    complete frame so far; a partial frame waits for more bytes. It raises
    ProtocolError as soon as a header is impossible (wrong version, a length
    below 11, a frame larger than ``max_frame_size``, or a frame other than
    DATA larger than ``max_control_size``), before waiting for the body, so a
    bogus length cannot make it buffer without limit. ``frames_taken``
    counts the frames returned so far.
    """

    def __init__(self, max_frame_size=DEFAULT_MAX_FRAME_SIZE, max_control_size=None):
        self.max_frame_size = max_frame_size
        self.max_control_size = max_frame_size if max_control_size is None else max_control_size
        self.frames_taken = 0
        self._buffer = bytearray()
        self._start = 0          # where the first unread byte is in _buffer

    def feed(self, data):
        self._buffer += data

    def buffered(self):
        """How many received bytes are not yet part of a returned frame."""
        return len(self._buffer) - self._start

    def unfinished_length(self):
        """The size of the frame under way: its length once its header has
        arrived, else what has (0: none under way)."""
        left = len(self._buffer) - self._start
        if left < HEADER_SIZE:
            return left
        return max(left, _LENGTH.unpack_from(self._buffer, self._start)[0])

    def whole_frame(self, data, frame_type, sender):
        """The common case, taken without buffering: when nothing is buffered
        and ``data`` is exactly one complete, valid frame of this type and
        sender, return ``(dest, its bytes)`` and count it; else None (and
        nothing is taken: feed it as usual)."""
        if len(self._buffer) or len(data) < HEADER_SIZE:
            return None
        length, version, dest, this_sender, this_type, meta = _HEADER.unpack_from(data)
        if (length != len(data) or this_type != frame_type or this_sender != sender
                or version != PROTOCOL_VERSION or length > self.max_frame_size):
            return None
        self.frames_taken += 1
        return dest, bytes(data)

    def next_frame(self):
        """Return the next complete Frame, or None if more bytes are needed."""
        start = self._start
        header = self._peek_header(start)
        if header is None:
            self._compact()
            return None
        end, frame_type, dest, sender, meta = header
        self.frames_taken += 1
        return Frame(frame_type, dest, sender, meta, self._take(start, end))

    def next_run(self, frame_type, sender):
        """Take a run of frames at once, if the next frame starts one.

        When the next complete frame has this type and sender, return
        ``(dest, data)``: its dest, and the bytes of it and of every complete
        frame right after it with the same type, sender and dest. Otherwise
        return None and take nothing. A relay forwards such a run in one
        piece instead of frame by frame.
        """
        start = end = self._start
        run_dest = None
        count = 0
        size = len(self._buffer)
        while size - end >= HEADER_SIZE:       # (the usual run ends exactly at the end)
            try:
                header = self._peek_header(end)
            except ProtocolError:
                if end == start:
                    raise
                break               # hand over the good frames; the error comes next time
            if header is None:
                break
            next_end, this_type, dest, this_sender, meta = header
            if this_type != frame_type or this_sender != sender or run_dest not in (None, dest):
                break
            run_dest, end = dest, next_end
            count += 1
        if end == start:
            return None
        self.frames_taken += count
        return run_dest, self._take(start, end)

    def _peek_header(self, start):
        """(end, type, dest, sender, meta) of the complete frame at ``start``,
        or None if it has not all arrived. Raises ProtocolError for a bad header."""
        buffer = self._buffer
        if len(buffer) - start < HEADER_SIZE:
            return None
        length, version, dest, sender, frame_type, meta = _HEADER.unpack_from(buffer, start)
        if version != PROTOCOL_VERSION:
            raise ProtocolError("protocol version {!r}, expected {!r}".format(
                bytes(version), PROTOCOL_VERSION), "version")
        if length < HEADER_SIZE:
            raise ProtocolError("frame length {} is shorter than the header".format(length))
        if length > self.max_frame_size:
            raise ProtocolError("frame of {} bytes is over the {} byte limit".format(
                length, self.max_frame_size))
        if length > self.max_control_size and frame_type != DATA:
            raise ProtocolError("type {} frame of {} bytes is over the {} byte limit for "
                                "frames other than DATA".format(
                                    frame_type, length, self.max_control_size))
        end = start + length
        if end > len(buffer):
            return None
        return end, frame_type, dest, sender, meta

    def __iter__(self):
        while self.buffered():
            frame = self.next_frame()
            if frame is None:
                return
            yield frame

    def _take(self, start, end):
        """The bytes from ``start`` to ``end``, which now count as read."""
        data = bytes(self._buffer[start:end])
        if end == len(self._buffer):
            self._buffer.clear()        # all read (the usual case): start afresh
            self._start = 0
        else:
            self._start = end
        return data

    def _compact(self):
        # Drop consumed bytes once per batch rather than once per frame, so a
        # long backlog costs linear time, not quadratic.
        if self._start:
            del self._buffer[:self._start]
            self._start = 0


# Builders for each frame type. The ``sender`` of node frames is the node's
# own address (UNKNOWN_ADDR until the relay has given it one).

def auth_frame(name, group):
    return encode_frame(AUTH, RELAY_ADDR, UNKNOWN_ADDR,
                        encode_json({"name": name, "group": group}))


def data_frame(dest, sender, encoded_messages):
    """A DATA frame carrying messages already encoded by ``encode_message``."""
    return encode_frame(DATA, dest, sender, b"[" + b",".join(encoded_messages) + b"]")


def encode_message(title, content, queue):
    return encode_json({"title": title, "content": content, "queue": bool(queue)})


def heart_frame(sender):
    # Original nodes send the JSON null here; relays ignore the payload.
    return encode_frame(HEART, RELAY_ADDR, sender, b"null")


def req_frame(sender, req_type, data=None):
    return encode_frame(REQ, RELAY_ADDR, sender, encode_json({"type": req_type, "data": data}))


def peers_frame(dest, peers):
    """``peers`` is a list of (name, addr) pairs."""
    return encode_frame(PEERS, dest, RELAY_ADDR,
                        encode_json([{"name": n, "addr": a} for n, a in peers]))


def sysm_frame(dest, sysm_type, msg, data):
    return encode_frame(SYSM, dest, RELAY_ADDR,
                        encode_json({"type": sysm_type, "msg": msg, "data": data}))


# Parsers: payload bytes in, checked Python values out, ProtocolError if not.

def parse_auth(payload):
    """Return (name, group) from an AUTH payload."""
    return parse_join(payload)[:2]


def parse_join(payload):
    """Return (name, group, observer) from an AUTH payload; ``observer`` is
    True only for this project's extension ``"observer": true``."""
    auth = decode_json(payload)
    if not isinstance(auth, dict):
        raise ProtocolError("AUTH payload is not a JSON object", "bad_payload")
    name, group = auth.get("name"), auth.get("group")
    if not isinstance(name, str) or not isinstance(group, str):
        raise ProtocolError("AUTH needs a string name and a string group", "bad_payload")
    return name, group, auth.get("observer") is True


def name_problem(name):
    """Why ``name`` cannot be a node's name, in one sentence; None if it can."""
    if not name:
        return "A name cannot be empty."
    if name == "ALL":
        return '"ALL" cannot be a name: it means everyone.'
    if len(name) > MAX_NAME_LENGTH:
        return "Names can be at most {} characters long.".format(MAX_NAME_LENGTH)
    if not name.isprintable():
        return "Names cannot contain line breaks, tabs or other control characters."
    return None


def parse_messages(payload):
    """Return [(title, content, queue), ...] from a DATA payload.

    Messages that are not objects with a string title are skipped, so one bad
    message does not cost the good ones beside it.
    """
    messages = decode_json(payload)
    if not isinstance(messages, list):
        raise ProtocolError("DATA payload is not a JSON list", "bad_payload")
    return [(m["title"], m.get("content"), bool(m.get("queue", False)))
            for m in messages if isinstance(m, dict) and isinstance(m.get("title"), str)]


def parse_peers(payload):
    """Return [(name, addr), ...] from a PEERS payload."""
    peers = decode_json(payload)
    if not isinstance(peers, list):
        raise ProtocolError("PEERS payload is not a JSON list", "bad_payload")
    result = []
    for peer in peers:
        if (not isinstance(peer, dict) or not isinstance(peer.get("name"), str)
                or not isinstance(peer.get("addr"), int) or not 0 < peer["addr"] < 255):
            raise ProtocolError("PEERS entry is not {name, addr}", "bad_payload")
        result.append((peer["name"], peer["addr"]))
    return result


def parse_typed(payload):
    """Return the decoded dict of a REQ or SYSM payload (it has an int "type")."""
    value = decode_json(payload)
    if not isinstance(value, dict) or not isinstance(value.get("type"), int):
        raise ProtocolError("payload is not an object with an integer type", "bad_payload")
    return value


def observer_auth_frame(name, group):
    """AUTH asking to watch ``group`` (this project's relay only)."""
    return encode_frame(AUTH, RELAY_ADDR, UNKNOWN_ADDR,
                        encode_json({"name": name, "group": group, "observer": True}))


# Discovery datagrams (UDP). See DISCOVERY_QUERY_PREFIX above.

def discovery_query(version=DISCOVERY_VERSION):
    """The bytes of one discovery query."""
    head = DISCOVERY_QUERY_PREFIX + str(version).encode("ascii") + b"\n"
    return head + bytes(DISCOVERY_QUERY_SIZE - len(head))


def parse_discovery_query(data):
    """The version of a well-formed discovery query, else None. Well formed:
    the prefix, a version number, a line break, zero padding, and at least
    DISCOVERY_QUERY_SIZE bytes in all (so that the answer fits in as many)."""
    if len(data) < DISCOVERY_QUERY_SIZE or not data.startswith(DISCOVERY_QUERY_PREFIX):
        return None
    head, newline, padding = bytes(data[len(DISCOVERY_QUERY_PREFIX):]).partition(b"\n")
    if not newline or not head.isdigit() or len(head) > 3 or padding.strip(b"\0"):
        return None
    version = int(head)
    return version if version >= 1 else None


def discovery_answer(info, limit):
    """The answer to a query: DISCOVERY_ANSWER_PREFIX and ``info`` as JSON, at
    most ``limit`` bytes. Groups that do not fit are left out and counted in
    ``"more_groups"``."""
    info = dict(info)
    groups = list(info["groups"].items()) if info.get("groups") else []
    while True:
        answer = DISCOVERY_ANSWER_PREFIX + encode_json(info)
        if len(answer) <= limit or not groups:
            return answer if len(answer) <= limit else None
        cut = max(1, len(groups) // 4)
        del groups[-cut:]
        info["groups"] = dict(groups)
        info["more_groups"] = info.get("more_groups", 0) + cut


def parse_discovery_answer(data):
    """The relay's info dict from an answer, or None if it is not one."""
    if not data.startswith(DISCOVERY_ANSWER_PREFIX):
        return None
    try:
        info = decode_json(data[len(DISCOVERY_ANSWER_PREFIX):])
    except ProtocolError:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("port"), int):
        return None
    if not isinstance(info.get("name"), str):
        info["name"] = None         # an older relay, or a name we cannot read
    groups = info.get("groups")
    if groups is not None and not (isinstance(groups, dict) and all(
            isinstance(n, int) for n in groups.values())):
        return None
    return info


# ---------------------------------------------------------------------------
# NetNode: the game's side
# ---------------------------------------------------------------------------

# NetNode is two layers, as the relay is. NodeCore (below) holds the node's
# side of the protocol and never touches a socket: it is fed bytes, time and
# the game's calls, and answers with bytes to send and events. NetNode is the
# thin driver that looks the relay up, opens the connection and moves bytes
# between the socket and the core; --check and --watch drive the same core.

# What connect_ex() answers while a non-blocking connection is under way
# (Windows says "would block" where Linux and macOS say "in progress").
_CONNECT_UNDER_WAY = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY,
                      getattr(errno, "WSAEWOULDBLOCK", errno.EWOULDBLOCK)}
_CONNECT_REFUSED = {errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", errno.ECONNREFUSED)}


def _core_attribute(name, doc=None, settable=False):
    """A NetNode attribute that is its NodeCore's attribute ``name``."""
    def setter(node, value):
        setattr(node._core, name, value)
    return property(lambda node: getattr(node._core, name), setter if settable else None,
                    doc=doc)


class NetNode:
    """A game's connection to a relay.

    Call ``connect()`` once, then ``process_recv()`` and ``process_send()``
    once per frame of your game. Nothing here raises because of the network:
    when something goes wrong, ``connected`` becomes False and ``error`` says
    why in plain words (``error_code`` gives a short machine-readable reason,
    such as ``"name_taken"`` or ``"no_relay"``).

    ``warning`` holds the relay's latest warning (for example that we send
    more than our share), or None. ``dropped_messages`` counts unread
    messages dropped because too many waited (see the limits below).
    """

    # Limits, so that neither a flood nor a stuck relay can freeze the game
    # or fill its memory. A game may change them on its NetNode before
    # connect(); tests shrink them. NodeCore reads them from here.
    max_frame_size = DEFAULT_MAX_FRAME_SIZE   # biggest frame sent or accepted (as the relay's)
    recv_budget_bytes = 256 * 1024            # process_recv() reads at most this much...
    recv_budget_seconds = 0.005               # ...and files messages for about this long
    max_queued = 100000                       # unread messages kept per (sender, title)
    max_titles = 1000                         # titles kept per sender
    max_inbox_bytes = 4 * 1024 * 1024         # unread messages kept, in bytes as they came
    max_unsent_bytes = 4 * 1024 * 1024        # more unsent than this: send_msg() says no
    send_stall_timeout = 10.0                 # bytes wait and the relay takes none this long: lost
    relay_silence_timeout = LIVENESS_TIMEOUT  # for a relay that sends heartbeats
    heartbeat_interval = HEARTBEAT_INTERVAL   # we send HEART when idle this long
    ping_interval = 1.0                       # we ask the relay for a round trip this often

    def __init__(self):
        self._sock = None
        self._lookup = None         # a _HostLookup while the relay's address is looked up
        self._addresses = []        # where the relay may be, still to try
        self._recv_buffer = _receive_buffer()
        self._backlog = False       # frames read but not yet filed: the time budget ran out
        self._core = NodeCore(self)
        self._inbox = _Inbox(self.max_queued, self.max_titles, self.max_inbox_bytes)
        self._teacher_message = None

    # -- connecting ---------------------------------------------------------

    def connect(self, host, name, group, port=None, wait=True, timeout=5):
        """Join ``group`` on the relay at ``host`` under the name ``name``.

        An empty ``name`` asks the relay to choose one (read it with
        ``get_name()``). With ``wait`` (the default) this returns True once
        the relay has accepted us, and False straight away when it refuses
        (name taken, unknown group, group full), when nothing listens at that
        address, or after ``timeout`` seconds without an answer; ``error``
        then says why.

        With ``wait=False`` it returns at once, without waiting for the
        network: True while the attempt goes on (``connecting`` is True),
        False if it could not even start (``error`` says why). The attempt
        goes on during ``process_send()`` and ``process_recv()`` and ends
        with ``connected`` True, or with ``error`` saying why not, within
        ``timeout`` seconds.

        Calling it again, even after a False, starts afresh.
        """
        if not isinstance(name, str) or not isinstance(group, str):
            raise TypeError("connect() needs the name and the group as strings")
        self._close_socket()
        port = DEFAULT_PORT if port is None else int(port)
        self._core = core = NodeCore(self)
        self._inbox = _Inbox(self.max_queued, self.max_titles, self.max_inbox_bytes)
        self._backlog = False
        if not core.start(host, port, name, group, time.monotonic(), timeout):
            return self._ended()
        self._lookup = _HostLookup(host, port, in_background=not wait)
        if self._lookup.addresses:
            self._see_lookup()  # found at once: start the TCP connection now
        if not wait:
            return self.connecting      # process_send() and process_recv() carry it on
        return self._wait_until_joined()

    @property
    def connected(self):
        """True while we are a member of the group."""
        return self._core.state is NODE_JOINED

    @property
    def connecting(self):
        """True while a ``connect()`` attempt is still under way."""
        return self._core.state in _NODE_UNDER_WAY

    name = _core_attribute("name", "Our name (the relay's choice, if we asked it to choose).")
    group = _core_attribute("group", "The group we joined (or are joining).")
    error = _core_attribute("error", "Why the last connect() failed or the connection ended, "
                                     "in plain words, or None.")
    error_code = _core_attribute("error_code", "The same in one word: see the NetNode."
                                               "error_code values at the top of this file.")
    warning = _core_attribute("warning", "The relay's latest warning in plain words, or None.")
    send_error = _core_attribute("send_error", "Why the last send_msg() returned False, in "
                                               "plain words, or None.")
    ping = _core_attribute("ping", """The round trip to the relay and back in milliseconds,
        as the game sees it (the median of the last few, one a second), or None: not
        measured yet, not connected, or a relay that does not answer pings (an original one).""")

    def get_teacher_message(self):
        """The teacher's latest message to our group (sent from the relay's
        board, ``--board``), once: None when there is none new. A game
        shows it for a few seconds. (If the teacher removes this game from
        the group, ``error_code`` is "kicked" and ``error`` gives the reason.)"""
        text, self._teacher_message = self._teacher_message, None
        return text

    @property
    def dropped_messages(self):
        """How many unread messages were dropped since connect() because
        too many waited: read them sooner, or send fewer."""
        return self._inbox.dropped

    def is_connected(self):
        """Same as the ``connected`` attribute."""
        return self.connected

    def disconnect(self):
        """Leave the group (or give up joining) and close the connection."""
        self._core.leave()
        self._flush()
        self._close_socket()

    # -- sending and receiving ----------------------------------------------

    def process_send(self):
        """Send everything queued by ``send_msg()``. Call it every frame.

        When there is nothing to send it sends a heartbeat now and then, so
        that the relay knows we are still here. A relay slows a game that
        sends more than its share by taking its bytes more slowly; if it
        takes none of what waits for ``send_stall_timeout`` seconds, the
        connection counts as lost.
        """
        core = self._core
        if core.state in _NODE_FINDING:
            self._go_on_connecting()
        core.pack()
        self._flush()
        self._after(core.tick(time.monotonic()))   # a heartbeat it adds goes next time

    def process_recv(self):
        """Read what has arrived and file the messages. Call it every frame.

        One call does a bounded amount of work, so that a flood cannot
        freeze the game: it reads at most ``recv_budget_bytes`` and files
        messages for about ``recv_budget_seconds``; the rest waits for the
        next call.
        """
        if self._core.state in _NODE_FINDING:
            self._go_on_connecting()
        if self._sock is None or self._core.state not in _NODE_TALKING:
            return
        stop_at = time.monotonic() + self.recv_budget_seconds
        if not self._backlog:           # what the last call had no time for comes first
            self._read_some()
        self._backlog = not self._file_events(stop_at)
        self._after(self._core.tick(time.monotonic()))

    def send_msg(self, name, title, content, queue=False):
        """Queue a message for the node called ``name`` (or "ALL" for everyone else).

        ``content`` can be anything JSON can carry; it is copied now, so
        changing your variable afterwards does not change the message. With
        ``queue=False`` the receiver keeps only the latest unread message of
        this title; with ``queue=True`` every message is kept in order.
        Sending to your own name delivers the message to you.

        Returns False, with ``send_error`` saying why in plain words, if
        there is no such node, if we are not connected, or if more than
        ``max_unsent_bytes`` already wait to be sent (the relay takes our
        messages more slowly than the game sends them: send fewer). Raises
        TypeError or ValueError if JSON cannot carry ``content``, and
        ValueError if the message is too big for one frame (``max_frame_size``).
        """
        if not isinstance(title, str):
            raise TypeError("send_msg(): the title must be a string, not {}".format(
                type(title).__name__))
        try:
            encoded = encode_message(title, content, queue)
        except (TypeError, ValueError) as exc:
            raise type(exc)("send_msg(): cannot send {!r}: {}. Send numbers, strings, "
                            "True/False/None, lists and dicts.".format(title, exc)) from None
        if HEADER_SIZE + len(encoded) + 2 > self.max_frame_size:
            raise ValueError("send_msg(): the message {!r} is {} bytes as JSON, more than one "
                             "frame can carry ({} bytes). Send it in smaller parts.".format(
                                 title, len(encoded), self.max_frame_size - HEADER_SIZE - 2))
        if name not in self._core.peers and name != "ALL" and self.connected:
            self.process_recv()         # the new member list may be waiting to be read
        return self._core.send(name, encoded)

    def available(self, sender, title):
        """How many unread messages called ``title`` came from ``sender``."""
        return self._inbox.available(sender, title)

    def get_msg(self, sender, title, clear=True):
        """Return the oldest unread ``title`` message from ``sender``, or None.

        With ``clear=False`` the message stays unread.
        """
        return self._inbox.get(sender, title, clear)

    def get_all_msgs(self, sender, title, clear=True):
        """Return a list of every unread ``title`` message from ``sender``
        (None if there are none). With ``clear=False`` they stay unread."""
        return self._inbox.get_all(sender, title, clear)

    def get_peers(self):
        """Names of the nodes in our group, ourselves included."""
        return list(self._core.peers)

    def get_name(self):
        """Our name (the one the relay chose, if we asked it to)."""
        return self._core.name

    def joined(self):
        """Names of the players who joined our group since the last call
        (the first call after connect() gives those already there).
        Changes to the group arrive with process_recv()."""
        return self._core.take_arrivals()

    def left(self):
        """Names of the players who left our group since the last call."""
        return self._core.take_departures()


    # -- the magical pair (kept for the original's users) -------------------

    def share_variables(self, name, variables):
        """Send each listed variable (by name) of the caller as a message
        titled with that name, latest-wins. Looks in the caller's locals, then
        its globals. Handy, but magical: learners should prefer send_msg()."""
        caller = inspect.currentframe().f_back
        try:
            for variable in variables:
                if variable in caller.f_locals:
                    value = caller.f_locals[variable]
                elif variable in caller.f_globals:
                    value = caller.f_globals[variable]
                else:
                    raise KeyError("share_variables(): no variable called {!r}".format(variable))
                self.send_msg(name, variable, value)
        finally:
            del caller

    def update_globals(self, name, variables):
        """Set each listed global variable of the caller to the latest value
        that ``name`` shared with share_variables(), if a new one arrived."""
        caller = inspect.currentframe().f_back
        try:
            for variable in variables:
                if variable not in caller.f_globals:
                    raise KeyError("update_globals(): {!r} is not a global variable".format(variable))
                value = self.get_msg(name, variable)
                if value is not None:
                    caller.f_globals[variable] = value
        finally:
            del caller

    # -- the core's parts, under their old names (for tests and benchmarks) ---

    _peers = _core_attribute("peers")
    _outbox = _core_attribute("outbox")
    _my_addr = _core_attribute("my_addr")
    _outgoing = _core_attribute("outgoing", settable=True)

    # -- the driver: lookup, TCP connection, socket reads and writes ---------

    def _go_on_connecting(self):
        """Move a connect() attempt on as far as it can go without waiting."""
        if self._core.state is NODE_LOOKING_UP:
            self._see_lookup()
        if self._core.state is NODE_CONNECTING:
            self._see_tcp_connect()
        self._after(self._core.tick(time.monotonic()))   # the connect() timeout

    def _see_lookup(self):
        addresses = self._lookup.addresses
        if addresses is None:
            return                                  # still looking (NodeCore keeps the time)
        if not addresses:
            host = self._core.host
            relay = "" if relay_name_problem(host) else (
                ", and no relay of that name answered on the local network")
            self._core.fail(BAD_ADDRESS, 'Cannot find a computer called "{}"{}. Check '
                            "SERVER_IP.".format(host, relay))
            self._ended()
        else:
            self._addresses = list(addresses)
            self._core.found()
            self._connect_next_address()

    def _connect_next_address(self):
        """Start a non-blocking TCP connection to the next address to try.

        connect_ex() on a non-blocking socket only starts the connection;
        _see_tcp_connect() looks later whether it has been made."""
        problem = None
        while self._addresses:
            family, kind, proto, _, address = self._addresses.pop(0)
            try:
                self._sock = socket.socket(family, kind, proto)
                self._sock.setblocking(False)
                problem = self._sock.connect_ex(address)
            except OSError as exc:
                problem = exc.errno
            if problem in _CONNECT_UNDER_WAY:
                return
            self._close_socket()
        self._give_up_connecting(problem)

    def _see_tcp_connect(self):
        """See, without waiting, whether the TCP connection has been made."""
        try:
            # A socket becomes writable when its connection attempt ends; if
            # it failed, SO_ERROR says why. (On Windows a failed attempt is an
            # "exceptional condition" for select(), which the selector counts
            # as writable.)
            with _new_selector() as selector:
                selector.register(self._sock, selectors.EVENT_WRITE)
                writable = bool(selector.select(0))
            problem = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as exc:
            writable, problem = False, exc.errno or -1
        if problem:
            self._close_socket()
            if self._addresses:
                self._connect_next_address()        # e.g. "localhost" as ::1, then 127.0.0.1
            else:
                self._give_up_connecting(problem)
        elif writable:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._core.opened(time.monotonic())
            self._core.join()
            self._flush()

    def _give_up_connecting(self, problem):
        core = self._core
        if problem in _CONNECT_REFUSED:
            core.fail(NO_RELAY, "No relay is running at {}. Start one with: python "
                      "nethelper.py -g {}{}".format(core.where, core.group or "<group>",
                                                   _port_option(core.port)))
        else:
            why = "{} (error {})".format(os.strerror(problem), problem) if problem else "unknown error"
            core.fail(NO_RELAY, "Cannot reach {}: {}".format(core.where, why))
        self._ended()

    def _wait_until_joined(self):
        """connect(wait=True): go on until the attempt ends, sleeping in
        the selector until the socket has news (or the timeout nears)."""
        self._go_on_connecting()
        with _new_selector() as selector:
            while self.connecting:
                wait = max(0.0, min(self._core.time_left(time.monotonic()), 0.5))
                if self._sock is None:
                    time.sleep(min(wait, 0.01))     # (Windows' select() cannot wait on nothing)
                else:
                    selector.register(self._sock, selectors.EVENT_WRITE if self._core.state
                                      is NODE_CONNECTING else selectors.EVENT_READ)
                    selector.select(wait)
                    selector.unregister(self._sock)
                self.process_recv()
                self._flush()
        return self.connected

    def _flush(self):
        core = self._core
        if self._sock is None or not core.outgoing or core.send_failed:
            return
        try:
            sent = self._sock.send(core.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            # The connection broke. What the relay sent before may still wait
            # to be read (a goodbye says why): the core reports the loss once
            # process_recv() has read all that.
            core.cannot_send(exc.strerror or str(exc))
            return
        core.sent(sent, time.monotonic())

    def _read_some(self):
        """Read at most recv_budget_bytes into the core."""
        core = self._core
        budget = self.recv_budget_bytes
        try:
            while budget > 0:
                size = self._sock.recv_into(self._recv_buffer, min(budget, _RECV_SIZE))
                core.receive(self._recv_buffer[:size], time.monotonic())
                if not size:
                    return                  # the relay closed the connection
                budget -= size
                if size < _SMALL_READ:
                    # A game's frame brings a few hundred bytes: asking again
                    # would only hear "nothing more", at the price of a system
                    # call. A backlog comes in big reads, so it is read on.
                    break
        except (BlockingIOError, InterruptedError):
            core.drained()              # all read: now a failed send ends it
        except OSError as exc:
            core.broken(exc.strerror or str(exc))

    def _file_events(self, stop_at):
        """Take the core's events until the time.monotonic() ``stop_at``
        at most. Returns False if some wait for the next process_recv()."""
        core = self._core
        while True:
            event = core.next_event()
            if event is None:
                return True
            self._after((event,))
            if self._sock is None:
                return True             # ended: the rest is moot
            if time.monotonic() >= stop_at:
                return False

    def _after(self, events):
        """Carry out what the core's events ask of the driver."""
        for event in events:
            kind = type(event)
            if kind is Received:
                if event.messages:
                    sender = self._core.names.get(event.sender)
                    size = event.size // len(event.messages)    # each message's share
                    for title, content, queue in event.messages:
                        self._inbox.add(sender, title, content, size, queue)
            elif kind is Warned:
                log.warning("The relay at %s warns: %s", self._core.where, event.text)
            elif kind is Told:
                self._teacher_message = event.text
                log.info("The teacher says: %s", event.text)
            elif kind is Ended:
                self._ended()

    def _ended(self):
        """The core has ended the connection (its error says why): close the socket."""
        self._close_socket()
        if self._core.error:
            log.info("%s", self._core.error)
        return False

    def _close_socket(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None


class _HostLookup:
    """Finds the addresses of ``host``. ``addresses`` is None until done, then
    a list of getaddrinfo() entries (empty if there is no such host).

    A written-out IP address, and "localhost", are found at once. Another
    name may need a name server, which can take seconds to answer (or not
    answer), so with ``in_background`` it is looked up in a helper thread
    and the game does not freeze meanwhile.
    """

    def __init__(self, host, port, in_background):
        self.addresses = None
        try:
            self.addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                flags=socket.AI_NUMERICHOST)
            return
        except (OSError, UnicodeError):
            pass                # not an IP address: a name to look up
        if in_background and host != "localhost":
            threading.Thread(target=self._look_up, args=(host, port), daemon=True).start()
        else:
            self._look_up(host, port)

    def _look_up(self, host, port):
        try:
            self.addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            # Not a computer the system knows: perhaps a relay's name (--name),
            # which the relay itself announces on the local network.
            found = relay_named(host, port) if not relay_name_problem(host) else None
            self.addresses = [(socket.AF_INET, socket.SOCK_STREAM, 0, "", found)] if found else []


class _Inbox:
    """A NetNode's unread messages, filed by sender name and title.

    A flood, from a peer or through a broken relay, must not fill the game's
    memory, so the inbox has limits and drops the oldest messages to stay
    within them: at most ``max_queued`` messages per (sender, title), at most
    ``max_titles`` titles per sender, and about ``max_bytes`` in all (counted
    as the messages' size on the wire). ``dropped`` counts the messages
    dropped that way. The limits are per sender, and room is made at the
    sender holding the most, so that a flooding peer loses its own messages,
    not the other players'.
    """

    def __init__(self, max_queued, max_titles, max_bytes):
        self.max_queued = max_queued
        self.max_titles = max_titles
        self.max_bytes = max_bytes
        self.dropped = 0
        self._bytes = 0
        # sender -> {title: deque of (size, content)}. The title that got a
        # message last is at the end, so the first is the most neglected one:
        # room is made there first.
        self._boxes = {}
        self._bytes_from = {}                           # sender -> bytes held

    def add(self, sender, title, content, size, queue):
        """File one message. Without ``queue`` it replaces the unread ones (latest wins)."""
        boxes = self._boxes.get(sender)
        if boxes is None:
            boxes = self._boxes[sender] = collections.OrderedDict()
            self._bytes_from[sender] = 0
        box = boxes.get(title)
        if box is None:
            if len(boxes) >= self.max_titles:
                self._drop_box(sender, next(iter(boxes)))
            box = boxes[title] = collections.deque()
        else:
            boxes.move_to_end(title)
            if box and not queue:
                self._empty(sender, box)        # replaced by a newer one: not a loss
            elif len(box) >= self.max_queued:
                self._take(sender, box)
                self.dropped += 1
        box.append((size, content))
        self._bytes += size
        self._bytes_from[sender] += size
        while self._bytes > self.max_bytes:
            heaviest = max(self._bytes_from, key=self._bytes_from.get)
            oldest_title = next(iter(self._boxes[heaviest]))
            oldest = self._boxes[heaviest][oldest_title]
            if oldest is box and len(box) == 1:
                break                           # never drop the message just filed
            if oldest:
                self._take(heaviest, oldest)
                self.dropped += 1
            else:
                del self._boxes[heaviest][oldest_title]

    def available(self, sender, title):
        return len(self._boxes.get(sender, {}).get(title, ()))

    def get(self, sender, title, clear):
        box = self._boxes.get(sender, {}).get(title)
        if not box:
            return None
        return self._take(sender, box) if clear else box[0][1]

    def get_all(self, sender, title, clear):
        box = self._boxes.get(sender, {}).get(title)
        if not box:
            return None
        messages = [content for _, content in box]
        if clear:
            self._empty(sender, box)
        return messages

    def _take(self, sender, box):
        size, content = box.popleft()
        self._bytes -= size
        self._bytes_from[sender] -= size
        return content

    def _empty(self, sender, box):
        size = sum(size for size, _ in box)
        self._bytes -= size
        self._bytes_from[sender] -= size
        box.clear()

    def _drop_box(self, sender, title):
        box = self._boxes[sender].pop(title)
        self.dropped += len(box)
        self._empty(sender, box)


# ---------------------------------------------------------------------------
# NodeCore: a node's side of the protocol, without sockets
# ---------------------------------------------------------------------------

# A node's states. Every change goes through NodeCore._move(), which checks
# it against this table. The driver looks the relay's address up
# (LOOKING_UP), opens a TCP connection (CONNECTING) and says when it is made
# (OPEN); join() then sends AUTH (JOINING), and the node is JOINED when its
# own name shows up in a PEERS list (an observer is WATCHING once the relay
# sends it the players). Any failure, and leave(), bring it back to IDLE,
# with ``error`` saying why (None after leave()).
NODE_IDLE = "idle"              # no connection: not started, left, or ended
NODE_LOOKING_UP = "looking up"  # the driver looks the relay's address up
NODE_CONNECTING = "connecting"  # the driver waits for the TCP connection
NODE_OPEN = "open"              # connected, not joining (yet): a --check probe asks here
NODE_JOINING = "joining"        # AUTH sent: waiting for the relay's answer
NODE_JOINED = "joined"          # a member of the group: DATA both ways
NODE_WATCHING = "watching"      # an observer (--watch): the group's DATA and players come

_NODE_NEXT_STATES = {
    NODE_IDLE: (NODE_LOOKING_UP, NODE_OPEN),
    NODE_LOOKING_UP: (NODE_CONNECTING, NODE_IDLE),
    NODE_CONNECTING: (NODE_OPEN, NODE_IDLE),
    NODE_OPEN: (NODE_JOINING, NODE_IDLE),
    NODE_JOINING: (NODE_JOINED, NODE_WATCHING, NODE_IDLE),
    NODE_JOINED: (NODE_IDLE,),
    NODE_WATCHING: (NODE_IDLE,),
}
_NODE_FINDING = (NODE_LOOKING_UP, NODE_CONNECTING)         # the driver is at work
_NODE_UNDER_WAY = (NODE_LOOKING_UP, NODE_CONNECTING, NODE_OPEN, NODE_JOINING)
_NODE_TALKING = (NODE_OPEN, NODE_JOINING, NODE_JOINED, NODE_WATCHING)   # a connection is up

# Events: what NodeCore.next_event() and tick() hand the driver.
Received = collections.namedtuple("Received", "sender dest messages size")
Received.__doc__ = """A DATA frame: sender and dest addresses, its messages as
[(title, content, queue), ...] (None if the payload is not a list of them) and
its size in bytes. NodeCore.names turns addresses into names."""
Players = collections.namedtuple("Players", "names")
Players.__doc__ = "An observer's new list of players (SYSM 5)."
Warned = collections.namedtuple("Warned", "code text")
Warned.__doc__ = "The relay warns us (SYSM 2); ``text`` is for people."
Told = collections.namedtuple("Told", "text")
Told.__doc__ = "The teacher's message to our group (SYSM 7, sent from the relay's board)."
Status = collections.namedtuple("Status", "info")
Status.__doc__ = "The relay's answer to ask_status() (SYSM 4): a dict."
Other = collections.namedtuple("Other", "frame")
Other.__doc__ = "A frame that means nothing to a node in this state."
Ended = collections.namedtuple("Ended", "code text by_relay")
Ended.__doc__ = """The connection is over (the core is IDLE again): ``code`` is
the error_code, ``text`` the reason in plain words; ``by_relay`` is True when
the relay said why (a refusal or a goodbye)."""


class NodeCore:
    """A node's side of the protocol, without sockets (NetNode's rules, as
    RelayCore holds the relay's).

    The driver tells it what happened, with method calls: ``start()``,
    ``found()`` and ``opened(now)`` as the connection comes up, ``join()``,
    ``watch()`` or ``ask_status()`` to talk, ``receive(data, now)`` for
    bytes from the relay (``b""``: the relay closed the connection),
    ``broken(why)``, ``cannot_send(why)`` and ``drained()`` for a broken
    connection, ``send()`` and ``pack()`` for the game's messages, ``sent(count,
    now)`` for bytes the socket took, ``tick(now)`` as time passes, and
    ``leave()``. The core answers with bytes to send, gathered in
    ``outgoing`` (the driver sends from its start and reports with
    ``sent()``), and with events: ``next_event()`` hands over one at a time
    what the received frames mean (Received, Players, Warned, Told, Status, Other,
    Ended; None when it needs more bytes), and ``tick()`` returns a list.

    ``settings`` is an object with NetNode's limits as attributes (a NetNode,
    or the NetNode class for its defaults). ``now`` is a time.monotonic()
    reading, so tests can drive time by hand.
    """

    def __init__(self, settings):
        self.settings = settings
        self.state = NODE_IDLE
        self.host, self.port, self.where = "", DEFAULT_PORT, ""
        self.name, self.group = "", ""
        self.error = self.error_code = self.warning = None
        self.reader = FrameReader(settings.max_frame_size)
        self.outgoing = bytearray()     # bytes for the driver to send, in order
        self.outbox = {}                # dest addr -> [encoded message], for pack()
        self.peers = {}                 # name -> addr, in the relay's order
        self.names = {}                 # addr -> name
        self.my_addr = UNKNOWN_ADDR
        self.arrivals, self.departures = [], []     # names, until take_arrivals() and ...
        self._outbox_bytes = 0          # bytes of the messages in outbox
        self._round_trips = collections.deque(maxlen=5)     # seconds, the latest pings'
        self._ping = None               # (number, when sent) of the ping under way
        self._next_ping = None          # when to ask for the next round trip
        self._pings_unanswered = 0
        self.relay_beats = False        # it has sent HEART (an original relay never does)
        self.send_failed = None         # why sending failed, if it did
        self.send_error = None          # why the last send() said no
        self._ending = None             # (why,) once the stream ended: frames before it first
        self._deadline = None           # connect()'s: joined by then, or TIMEOUT
        self._timeout = 0
        self._last_heard = self._last_sent = 0.0
        self._stuck_since = None        # when a send last left bytes waiting

    # -- the connection comes up ----------------------------------------------

    def start(self, host, port, name, group, now, timeout):
        """connect() begins: the driver is to look ``host`` up. Returns
        False (and the core stays IDLE, ``error`` saying why) for a port
        out of range or a name the relay would refuse."""
        self.host, self.port, self.where = host, port, "{}:{}".format(host, port)
        self.name, self.group = name, group
        if not 0 < port <= 65535:
            return self.fail(BAD_ADDRESS, "{} is not a port number: ports go from 1 to 65535 "
                                          "(the relay's is {}).".format(port, DEFAULT_PORT))
        if name and name_problem(name):
            return self.fail(BAD_REQUEST, name_problem(name))
        self._timeout, self._deadline = timeout, now + timeout
        self._move(NODE_LOOKING_UP)
        return True

    def found(self):
        """The relay's address is known: the driver opens the connection."""
        self._move(NODE_CONNECTING)

    def opened(self, now, where=None):
        """The TCP connection is made (``where`` names it, if start() did not)."""
        if where is not None:
            self.where = where
        self._last_heard = self._last_sent = now
        self._move(NODE_OPEN)

    def join(self):
        """Ask to join the group given to start() (AUTH)."""
        self.outgoing += auth_frame(self.name, self.group)
        self._move(NODE_JOINING)

    def watch(self, name, group):
        """Ask to watch ``group`` as an observer (this project's relay only)."""
        self.name, self.group = name, group
        self.outgoing += observer_auth_frame(name, group)
        self._move(NODE_JOINING)

    def ask_status(self):
        """Ask the relay for its status (REQ 2); the answer is a Status event."""
        self.outgoing += req_frame(self.my_addr, REQ_STATUS)

    def time_left(self, now):
        """Seconds until connect()'s timeout (0 when there is none)."""
        return 0.0 if self._deadline is None else self._deadline - now

    # -- bytes in -------------------------------------------------------------

    def receive(self, data, now):
        """Bytes from the relay; ``b""`` means it closed the connection."""
        if self.state not in _NODE_TALKING or self._ending:
            return
        if not data:
            self._ending = (None,)
            return
        self._last_heard = now
        self.reader.feed(data)

    def broken(self, why):
        """Reading failed (``why``): the frames read before still count."""
        if self.state in _NODE_TALKING and not self._ending:
            self._ending = (why,)

    def cannot_send(self, why):
        """Sending failed: the connection is broken. What the relay sent
        before may still wait in the socket (a goodbye saying why), so the
        end comes once the driver has read all that (drained())."""
        self.send_failed = why
        self.outgoing.clear()

    def drained(self):
        """The driver has read everything the socket held."""
        if self.send_failed and self.state in _NODE_TALKING and not self._ending:
            self._ending = (self.send_failed,)

    def next_event(self):
        """The next thing the received bytes say, or None if more are needed.
        Frames are taken one at a time, so a driver can stop between two."""
        while self.state in _NODE_TALKING:
            try:
                frame = self.reader.next_frame()
            except ProtocolError as exc:
                return self._end(PROTOCOL, "The relay at {} sent something this node cannot "
                                 "read ({}).".format(self.where, exc))
            if frame is None:
                return self._stream_ended() if self._ending else None
            event = self._handle(frame)
            if event is not None:
                return event
        return None

    # -- the game's messages out ------------------------------------------------

    def send(self, name, encoded):
        """Queue one encoded message for ``name`` ("ALL": everyone else).
        Returns True, or False with ``send_error`` saying why."""
        self.send_error = None
        if self.state is not NODE_JOINED:
            return self._refuse_send("Not connected to a relay{}.".format(
                ": " + self.error if self.error else ""))
        dest = ALL_ADDR if name == "ALL" else self.peers.get(name)
        if dest is None:
            return self._refuse_send("Nobody called {!r} is in the group {!r} (its players: "
                                     "{}).".format(name, self.group, ", ".join(self.peers)))
        waiting = len(self.outgoing) + self._outbox_bytes
        if waiting > self.settings.max_unsent_bytes:
            # The relay slows a sender over its share by taking its bytes
            # more slowly: the game learns it here, and nothing is lost.
            return self._refuse_send(
                "Not sent: {} KiB of messages still wait to go, because the relay takes them "
                "more slowly than this game sends them (it slows a game that sends more than "
                "its share, or the network is slow). Send fewer or smaller messages.".format(
                    waiting // 1024))
        self.outbox.setdefault(dest, []).append(encoded)
        self._outbox_bytes += len(encoded)
        return True

    def take_arrivals(self):
        """The names that joined since the last call (NetNode.joined())."""
        names, self.arrivals = self.arrivals, []
        return names

    def take_departures(self):
        """The names that left since the last call (NetNode.left())."""
        names, self.departures = self.departures, []
        return names

    @property
    def ping(self):
        """The median round trip of the latest pings in ms, or None."""
        if self.state is not NODE_JOINED or not self._round_trips:
            return None
        return round(1000 * _median(self._round_trips), 1)

    def _refuse_send(self, why):
        self.send_error = why
        return False

    def pack(self):
        """Turn the queued messages into DATA frames, as many messages per
        frame as fit in max_frame_size (a relay drops a node that sends a
        bigger frame)."""
        if self.state is not NODE_JOINED or self.send_failed:
            return
        limit = self.settings.max_frame_size
        for dest, messages in self.outbox.items():
            batch, frame_size = [], HEADER_SIZE + 1         # the header and "["
            for message in messages:
                if batch and frame_size + len(message) + 1 > limit:
                    self.outgoing += data_frame(dest, self.my_addr, batch)
                    batch, frame_size = [], HEADER_SIZE + 1
                batch.append(message)
                frame_size += len(message) + 1              # the message and "," or "]"
            if batch:
                self.outgoing += data_frame(dest, self.my_addr, batch)
        self.outbox.clear()
        self._outbox_bytes = 0

    def sent(self, count, now):
        """The driver tried to send ``outgoing``, and the socket took the
        first ``count`` bytes (0: none, it is full)."""
        if count:
            del self.outgoing[:count]
            self._last_sent = now
        if not self.outgoing:
            self._stuck_since = None
        elif count or self._stuck_since is None:
            self._stuck_since = now         # bytes wait from now on

    def leave(self):
        """Leave the group (REQ 0, for the driver to send) or give up joining."""
        if self.state is NODE_JOINED or self.state is NODE_WATCHING:
            self.outgoing += req_frame(self.my_addr, REQ_LEAVE)
        if self.state is not NODE_IDLE:
            self._move(NODE_IDLE)
        self.peers.clear()

    def fail(self, code, text):
        """The driver could not go on (no such host, nothing listening...):
        the attempt ends with this error. Returns False."""
        self._end(code, text)
        return False

    # -- time -------------------------------------------------------------------

    def tick(self, now):
        """Time passed: connect()'s timeout, a relay gone silent or no longer
        taking what we send, heartbeats and pings. Returns a list of events."""
        state = self.state
        settings = self.settings
        if state in _NODE_UNDER_WAY and self._deadline is not None and now >= self._deadline:
            return [self._end(TIMEOUT, self._timeout_reason())]
        if state is NODE_JOINED:
            if self.relay_beats and now - self._last_heard >= settings.relay_silence_timeout:
                # Only a relay that sends heartbeats can be silent for too long:
                # an original relay says nothing while the other player is quiet.
                return [self._end(LOST, "The relay at {} has said nothing for {:g} s although "
                                  "it sends a heartbeat every second: it, or the network, has "
                                  "stopped.".format(self.where, settings.relay_silence_timeout))]
            stuck_since = self._stuck_since
            if stuck_since is not None and now - stuck_since >= settings.send_stall_timeout:
                return [self._end(LOST, "The relay at {} has stopped taking what this node "
                                  "sends ({} KiB wait to go, none taken for {:g} s): it is "
                                  "stuck, or the network is.".format(
                                      self.where, len(self.outgoing) // 1024,
                                      settings.send_stall_timeout))]
            if self._next_ping is not None and now >= self._next_ping:
                self._send_ping(now)
        if (state is NODE_JOINED or state is NODE_WATCHING) and not self.outgoing \
                and not self.send_failed and now - self._last_sent >= settings.heartbeat_interval:
            self.outgoing += heart_frame(self.my_addr)
        return []

    def _send_ping(self, now):
        """Ask the relay for a round trip (REQ 3, answered with SYSM 6 by
        this project's relay). One that never answers three is not asked again."""
        if self._ping is not None:
            self._pings_unanswered += 1
            if self._pings_unanswered >= 3 and not self._round_trips:
                self._next_ping = None          # an original relay: it never answers
                return
        number = self._ping[0] + 1 if self._ping else 1
        self._ping = (number, now)
        self._next_ping = now + self.settings.ping_interval
        self.outgoing += req_frame(self.my_addr, REQ_PING, number)

    def _timeout_reason(self):
        if self.state is NODE_LOOKING_UP:
            return 'Looking up the computer called "{}" took more than {} s. Check ' \
                   "SERVER_IP.".format(self.host, self._timeout)
        if self.state is NODE_CONNECTING:
            return "No answer from {} within {} s. Check SERVER_IP, and that the relay's " \
                   "firewall lets TCP port {} in.".format(self.where, self._timeout, self.port)
        return "The relay at {} did not answer the request to join within {} s.".format(
            self.where, self._timeout)

    # -- frames -----------------------------------------------------------------

    def _handle(self, frame):
        """What one frame from the relay means: an event, or None."""
        kind = frame.type
        if kind == DATA:
            if self.state is not NODE_JOINED and self.state is not NODE_WATCHING:
                return Other(frame)
            try:
                messages = parse_messages(frame.payload)
            except ProtocolError as exc:
                # A peer's bad DATA is its own problem: skip it and stay connected.
                log.debug("ignored DATA from address %d: %s", frame.sender, exc)
                messages = None
            return Received(frame.sender, frame.dest, messages, len(frame.raw))
        if kind == PEERS:
            return self._on_peers(frame)
        if kind == SYSM:
            return self._on_sysm(frame)
        if kind == HEART and frame.sender == RELAY_ADDR:
            self.relay_beats = True
            return None
        return Other(frame)     # not for nodes, or a type a newer relay added

    def _on_peers(self, frame):
        if self.state is not NODE_JOINING and self.state is not NODE_JOINED:
            return Other(frame)
        try:
            peers = parse_peers(frame.payload)
        except ProtocolError as exc:
            log.debug("ignored PEERS: %s", exc)
            return None
        before, self.peers = self.peers, dict(peers)
        self.names = {addr: name for name, addr in peers}
        if self.state is NODE_JOINING and self.name in self.peers:
            self.my_addr = self.peers[self.name]
            self._move(NODE_JOINED)
            before = {self.name: self.my_addr}      # the others were there already: "joined"
            self._next_ping = self._last_heard + self.settings.ping_interval
        if self.state is NODE_JOINED:
            self.arrivals += [name for name in self.peers if name not in before]
            self.departures += [name for name in before if name not in self.peers]
        return None

    def _on_sysm(self, frame):
        try:
            message = parse_typed(frame.payload)
        except ProtocolError:
            return Other(frame)
        kind, reason, data = message["type"], message.get("msg"), message.get("data")
        if kind == SYSM_NAME and isinstance(data, str) and self.state is NODE_JOINING:
            self.name = data
        elif kind == SYSM_REFUSED:
            return self._end(str(reason), str(data or "The relay refused to let us join."),
                             by_relay=True)
        elif kind == SYSM_GOODBYE:
            # The relay is closing our connection, and says why.
            return self._end(str(reason or LOST), str(data or "The relay closed the connection."),
                             by_relay=True)
        elif kind == SYSM_WARNING:
            self.warning = str(data or reason)
            return Warned(reason, self.warning)
        elif kind == SYSM_MESSAGE and isinstance(data, str) and data:
            return Told(data)
        elif kind == SYSM_STATUS and isinstance(data, dict):
            return Status(data)
        elif kind == SYSM_PONG and self._ping is not None and data == self._ping[0]:
            # The time of the read that brought the answer: what the game sees.
            self._round_trips.append(self._last_heard - self._ping[1])
            self._pings_unanswered = 0
        elif kind == SYSM_PLAYERS and self.state in (NODE_JOINING, NODE_WATCHING):
            try:
                players = parse_peers(encode_json(data or []))
            except ProtocolError:
                return None             # a list it cannot read: keep the names it had
            self.names = {addr: name for name, addr in players}
            if self.state is NODE_JOINING:
                self._move(NODE_WATCHING)
            return Players([name for name, _ in players])
        else:
            return Other(frame)
        return None

    # -- the end ------------------------------------------------------------------

    def _stream_ended(self):
        """Every frame that came before the end has been taken: now the end."""
        why, = self._ending
        if self.state is NODE_JOINED or self.state is NODE_WATCHING:
            if why is None:
                return self._end(LOST, "The relay at {} closed the connection (it stopped, or "
                                 "dropped this node).".format(self.where))
            return self._end(LOST, "The connection to the relay at {} was lost ({}).".format(
                self.where, why))
        # An original relay refuses by closing without saying why.
        return self._end(CLOSED_WHILE_JOINING, 'The relay at {} closed the connection while we '
                         'were joining: the name "{}" may be taken, or the group "{}" unknown '
                         'or full.'.format(self.where, self.name, self.group))

    def _end(self, code, text, by_relay=False):
        self.error_code, self.error = code, text
        if self.state is not NODE_IDLE:
            self._move(NODE_IDLE)
        self.peers.clear()
        return Ended(code, text, by_relay)

    def _move(self, state):
        if state not in _NODE_NEXT_STATES[self.state]:
            raise AssertionError("a node cannot go from {} to {}".format(self.state, state))
        self.state = state


# ---------------------------------------------------------------------------
# Relay options: each one declared once, here
# ---------------------------------------------------------------------------
#
# The command line (main), the keyword arguments of Relay and RelayCore,
# their checks and the README's "Relay options" table all come from
# RELAY_OPTIONS. An option's scope says who reads it: "core" (a RelayCore
# setting, passed on by Relay), "driver" (Relay's own: where it listens) or
# "command" (the command line only: files to read, how much to log).

class RelayOption:
    """One relay option: its keyword ``name`` and ``default``; ``help``, what
    it means (``{default}`` stands for the default); the command line's
    ``flags`` (none: a keyword only); ``kind``, what its value is (int,
    float, str, bool for a switch, list for several words); ``check``, which
    returns what is wrong with a value (or None); ``scope`` (see above)."""

    __slots__ = ("name", "default", "help", "flags", "kind", "metavar", "check", "scope")

    def __init__(self, name, default, help, flags=(), kind=int, metavar="N", check=None,
                 scope="core"):
        self.name, self.default, self.help, self.flags = name, default, help, flags
        self.kind, self.metavar, self.check, self.scope = kind, metavar, check, scope

    def text(self):
        """``help`` with the default filled in (Markdown, as the README shows it)."""
        return self.help.format(default=self.default)

    def problem(self, value):
        """What is wrong with ``value`` for this option, or None."""
        kind = self.kind
        if value is None and self.default is None:
            return None                 # not given: the default's meaning (see help)
        if kind is int or kind is float:
            numbers = (int,) if kind is int else (int, float)
            if not isinstance(value, numbers) or isinstance(value, bool):
                return "{} must be a{} number, not {!r}".format(
                    self.name, " whole" if kind is int else "", value)
        problem = self.check(value) if self.check else None
        return "{} {}".format(self.name, problem) if problem else None

    def add_to(self, parser):
        """Declare it to an argparse parser (command line options only)."""
        help = self.text().replace("`", "").replace("%", "%%")
        if self.kind is bool:
            parser.add_argument(*self.flags, dest=self.name, action="store_true", help=help)
        elif self.kind is list:
            parser.add_argument(*self.flags, dest=self.name, nargs="+", metavar=self.metavar,
                                default=self.default, help=help)
        else:
            parser.add_argument(*self.flags, dest=self.name, type=self.kind,
                                metavar=self.metavar, default=self.default, help=help)


MAX_RELAY_NAME_LENGTH = 40


def relay_name_problem(name):
    """What is wrong with ``name`` as a relay's name (None: nothing). A name is
    typed into SERVER_IP, so: letters (any script), digits, "-" and "_"."""
    if name is None:
        return None             # (the default: this computer's name)
    if not isinstance(name, str) or not name or len(name) > MAX_RELAY_NAME_LENGTH:
        return "must be 1 to {} characters".format(MAX_RELAY_NAME_LENGTH)
    if not all(c.isalnum() or c in "-_" for c in name):
        return "may have only letters, digits, - and _ (not {!r})".format(name)
    return None


def typable_name(text):
    """A relay name made from a computer's name: its first part, in small
    letters, with "-" for spaces and other signs ("Minji's PC.local" ->
    "minjis-pc"); "relay" if nothing is left."""
    first = text.split(".")[0].replace("'", "").lower()
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in first)
    name = re.sub("-{2,}", "-", name).strip("-_")[:MAX_RELAY_NAME_LENGTH].strip("-_")
    return name or "relay"


def _from_to(low, high, why=""):
    return lambda value: None if low <= value <= high else "must be from {} to {}{}".format(
        low, high, why)


def _above(low):
    return lambda value: None if value > low else "must be above {}".format(low)


def _at_least(low):
    return lambda value: None if value >= low else "must be at least {}".format(low)


RELAY_OPTIONS = (
    RelayOption("groups", None, "the groups games may join (with neither `-g` nor `-f`: "
                "`pong_game`)", ("-g", "--groups"), list, "GROUP", scope="command"),
    RelayOption("file", None, "read groups from a file, one per line; `#` starts a comment (may "
                "be combined with `-g`); a file saved by Windows Notepad (UTF-8, with or "
                "without a byte-order mark) is fine", ("-f", "--file"), str, "FILE",
                scope="command"),
    RelayOption("port", DEFAULT_PORT, "listen on this TCP port (default {default}; 0 picks a "
                "free one); with `--find`, `--check` or `--watch`, the relay's port",
                ("-p", "--port"), int, "PORT", _from_to(0, 65535), scope="driver"),
    RelayOption("host", None, "listen on this address only (default: all, IPv4 and IPv6)",
                ("-i", "--interface"), str, "ADDRESS", scope="driver"),
    RelayOption("names", None, "names to give players that ask the relay to choose one, one "
                "per line", ("-n", "--names"), str, "FILE", scope="command"),
    RelayOption("max_peers", MAX_NODES_PER_GROUP, "most players in one group (default "
                "{default}; others are refused with `group_full`)", ("--max-peers",),
                check=_from_to(1, MAX_NODES_PER_GROUP)),
    RelayOption("max_connections", 1000, "most connections at once (default {default}; others "
                "get `server_full`)", ("--max-connections",), check=_at_least(1)),
    RelayOption("max_frame_size", DEFAULT_MAX_FRAME_SIZE, "largest frame accepted, in bytes "
                "(default {default}, 1 MiB, which is also the most: it can only be lowered, "
                "since a `NetNode` reads no larger frames)", ("--max-frame-size",),
                metavar="BYTES", check=_from_to(256, DEFAULT_MAX_FRAME_SIZE, " bytes: it can "
                                                "only lower the limit, since a NetNode reads "
                                                "no larger frames")),
    RelayOption("quota_bytes", 256 * 1024, "bytes a second each player may send, bursts of "
                "two seconds' worth (default {default}, 256 KiB); the relay reads more slowly "
                "from a player over it", ("--quota-bytes",), check=_above(0)),
    RelayOption("quota_frames", 1000, "frames a second each player may send, bursts of two "
                "seconds' worth (default {default})", ("--quota-frames",), check=_above(0)),
    RelayOption("private", False, "never tell a program that has not joined which groups there "
                "are (nor `--find` or `--check`: they see only how many play)", ("--private",),
                bool),
    RelayOption("name", typable_name(socket.gethostname()), "the relay's name, which games may "
                "use instead of its address (`SERVER_IP = \"minji-pc\"`), shown by `--find` and "
                "`--check` (default: this computer's name, made typable); letters (Korean too), "
                "digits, `-`, `_`",
                ("--name",), str, "NAME", relay_name_problem),
    RelayOption("any_group", False, "an open relay: any group a game asks for is made for it "
                "(the same name rules, limits and quotas), and goes when its last player "
                "leaves; `-g '*'` says the same", ("--any-group",), bool),
    RelayOption("quiet", False, "only report problems (no joins, leaves or summaries)",
                ("-q", "--quiet"), bool, scope="command"),
    RelayOption("verbose", False, "also report ignored frames", ("-v", "--verbose"), bool,
                scope="command"),
    RelayOption("max_pending", 1024 * 1024, "bytes waiting for a player that does not read "
                "before it is dropped as too slow (default {default})", check=_at_least(1)),
    RelayOption("max_observers", MAX_OBSERVERS, "most `--watch` observers per group (default "
                "{default}); they are not players", check=_at_least(0)),
    RelayOption("auth_timeout", 5.0, "seconds to join after connecting (default {default})",
                kind=float, check=_above(0)),
    RelayOption("liveness_timeout", LIVENESS_TIMEOUT, "seconds of silence before a player is "
                "dropped (default {default})", kind=float, check=_above(0)),
    RelayOption("partial_frame_timeout", 5.0, "seconds to finish a frame once started "
                "(default {default})", kind=float, check=_above(0)),
    RelayOption("heartbeat_interval", HEARTBEAT_INTERVAL, "seconds of quiet before the relay "
                "sends a player a heartbeat (default {default})", kind=float, check=_above(0)),
    RelayOption("summary_interval", 5.0, "seconds between the summary lines of busy groups "
                "(default {default}; `-q`: none)", kind=float, check=_above(0)),
    RelayOption("stats", None, "append the relay's own figures to FILE once a second, one JSON "
                "line each (loop turns, their CPU time p50/p99/max in ms, connections): they "
                "tell a slow relay from a busy computer", ("--stats",), str, "FILE",
                scope="driver"),
    RelayOption("discovery", True, "answer `--find` on UDP at the relay's port number "
                "(default {default})", kind=bool, scope="driver"),
    RelayOption("board", False, "also serve the teacher's board, a web page of every group "
                "(the banner prints its address with its key)", ("--board",), bool,
                scope="driver"),
    RelayOption("board_port", None, "the board's TCP port (default: the relay's port + 1)",
                ("--board-port",), int, "PORT", _from_to(0, 65535), scope="driver"),
)
_OPTIONS = {option.name: option for option in RELAY_OPTIONS}


def relay_settings(scope, given):
    """The options of ``scope`` ("core" or "driver"): ``given`` (a dict of
    keyword arguments) over the defaults, each checked. Raises TypeError for
    a name that is no such option, ValueError for a value its check refuses."""
    settings = {}
    for name, value in given.items():
        option = _OPTIONS.get(name)
        if option is None or option.scope == "command":
            raise TypeError("the relay has no option {!r}; its options: {}".format(
                name, ", ".join(o.name for o in RELAY_OPTIONS if o.scope != "command")))
        if option.scope == scope:
            problem = option.problem(value)
            if problem:
                raise ValueError(problem)
            settings[name] = value
    for option in RELAY_OPTIONS:
        if option.scope == scope:
            settings.setdefault(option.name, option.default)
    return settings


def relay_options_markdown():
    """The README's table of relay options, made from RELAY_OPTIONS."""
    rows = ["| option | `Relay(...)` keyword | meaning |", "|--------|------|---------|"]
    for option in RELAY_OPTIONS:
        flags = ""
        if option.flags:
            first = option.flags[0]
            if option.kind is list:
                first += " {} ...".format(option.metavar)
            elif option.kind is not bool:
                first += " " + option.metavar
            flags = ", ".join("`{}`".format(f) for f in (first,) + option.flags[1:])
        keyword = "" if option.scope == "command" else "`{}`".format(option.name)
        rows.append("| {} | {} | {} |".format(flags, keyword, option.text()))
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------------------
# Relay: the server
# ---------------------------------------------------------------------------
#
# The relay is two layers. RelayCore holds every rule (who may join, where a
# frame goes, quotas, timeouts) and never touches a socket: it is fed events
# and answers with actions. Relay is the thin driver that turns a selectors
# loop's socket events into core events and carries the actions out.

class _TurnTimes:
    """--stats: how long the relay's loop turns take, as CPU time of its
    thread (its own work, from the end of one wait to the start of the
    next; time other programs held the CPU is not counted, so a busy
    computer does not make the relay look slow), written once a second as a
    JSON line: time.monotonic() at the end of the second, turns, turn time
    p50/p99/max in ms, connections. A histogram of 0.1 ms steps keeps the
    cost per turn at two clock readings."""

    STEP = 1e-4
    STEPS = 1000                    # up to 100 ms; longer turns count in the last step

    def __init__(self, path, core):
        try:
            self.file = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise RelayError("cannot write the --stats file {}: {}".format(
                path, exc.strerror or exc)) from None
        self.core = core
        self.counts = [0] * (self.STEPS + 1)
        self.turns = 0
        self.longest = 0.0
        self.started = 0.0
        self.next_line = time.monotonic() + 1.0

    def begin(self):
        self.started = time.thread_time()

    def end(self):
        took = time.thread_time() - self.started
        self.counts[min(int(took / self.STEP), self.STEPS)] += 1
        self.turns += 1
        if took > self.longest:
            self.longest = took
        now = time.monotonic()
        if now >= self.next_line:
            self.next_line = now + 1.0
            self.write(now)

    def _percentile(self, q):
        wanted, seen = q * self.turns, 0
        for step, count in enumerate(self.counts):
            seen += count
            if seen >= wanted:
                return min((step + 1) * self.STEP, self.longest) * 1000
        return self.longest * 1000

    def write(self, now):
        if self.turns:
            self.file.write(json.dumps({
                "at": round(now, 4), "turns": self.turns,
                "turn_p50_ms": round(self._percentile(0.5), 2),
                "turn_p99_ms": round(self._percentile(0.99), 2),
                "turn_max_ms": round(self.longest * 1000, 2),
                "connections": len(self.core.connections)}) + "\n")
            self.file.flush()
        self.counts = [0] * (self.STEPS + 1)
        self.turns, self.longest = 0, 0.0

    def close(self):
        self.write(time.monotonic())
        self.file.close()


class RelayError(Exception):
    """The relay cannot start (for example, the port is already in use)."""


class Relay:
    """The relay server. It passes messages between the nodes of each group.

    Run it from the command line (``python nethelper.py -g pong_game``) or
    inside another program; ``with`` runs it in a background thread::

        with Relay(["pong_game"], host="127.0.0.1", port=0) as relay:
            print("relay on port", relay.port)
            ...                     # the relay stops at the end of the block

    ``start()`` binds the port (``port=0`` picks a free one) and
    ``serve_forever()`` runs the loop until ``stop()`` is called. Its keyword
    arguments are the options in RELAY_OPTIONS (the README's table): ``host``,
    ``port`` and ``discovery`` (answer ``--find`` on UDP at the same port
    number) are its own; the limits, quotas and timeouts go to RelayCore,
    which is ``relay.core``. ``names``: the names it hands out.
    """

    def __init__(self, groups, names=None, **options):
        driver = relay_settings("driver", options)
        self.core = RelayCore(groups, names=names, **{
            name: value for name, value in options.items() if name not in driver})
        self.core.max_connections = _fit_to_open_file_limit(self.core.max_connections)
        self.host = driver["host"]
        self.port = driver["port"]
        self._listener = None
        self._discovery = driver["discovery"]     # answer discovery queries on UDP (same port)
        self._stats = driver["stats"]             # where --stats writes, or None
        self._turns = None
        self._udp = None
        self._selector = None
        self._want_flush = set()     # connections with bytes waiting to be sent
        self._sockets = set()        # connections with a socket (paused ones are not watched)
        self._stopping = False
        self._accepting_again_at = None     # set while accepting is paused (out of files)
        self._thread = None
        self._wake_send = self._wake_recv = None
        self._recv_buffer = _receive_buffer()
        self._read_left = _TURN_READ_BUDGET
        self.board = None            # the teacher's board (see Board), if it has one
        if driver["board"]:
            Board(self, self.host, driver["board_port"])
        self.started_at = time.monotonic()

    @property
    def groups(self):
        """{group: {address: connection}}, every group this relay serves."""
        return self.core.groups

    @property
    def max_connections(self):
        return self.core.max_connections

    def members(self, group):
        """Names in ``group``, in the order they joined."""
        return self.core.members(group)

    # -- life cycle -----------------------------------------------------------

    def start(self):
        """Bind the listening socket. After this, ``port`` is the real port."""
        if self._stats:
            self._turns = _TurnTimes(self._stats, self.core)
        self._listener = _listen(self.host, self.port)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = _new_selector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        if self._discovery:
            self._udp = _open_discovery_socket(self.host, self.port)
            if self._udp is not None:
                self._selector.register(self._udp, selectors.EVENT_READ, None)
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._selector.register(self._wake_recv, selectors.EVENT_READ, None)
        self._stopping = False
        self.started_at = time.monotonic()
        if self.board is not None:
            try:
                self.board.start()
            except RelayError:
                self._shut_down()
                raise
        return self

    def serve_forever(self):
        """Run the relay until ``stop()`` is called (from another thread)."""
        if self._listener is None:
            self.start()
        core = self.core
        next_tick = time.monotonic() + core.tick_interval
        turns, self._turns = self._turns, None
        try:
            while not self._stopping:
                timeout = core.tick_interval
                wake = core.next_wake()         # a pause that ends, a list going out
                if wake < float("inf"):
                    timeout = max(0.0, min(timeout, wake - time.monotonic()))
                ready = self._selector.select(timeout=timeout)
                if turns is not None:
                    turns.begin()
                self._read_left = _TURN_READ_BUDGET
                for key, events in ready:
                    if key.data is not None:
                        self._service(key.data, events)
                    elif key.fileobj is self._listener:
                        self._accept_all()
                    elif key.fileobj is self._udp:
                        self._read_datagrams()
                    else:
                        self._drain_wake_socket()
                now = time.monotonic()
                core.end_turn(now)
                if self._accepting_again_at is not None and now >= self._accepting_again_at:
                    self._accepting_again_at = None
                    self._selector.register(self._listener, selectors.EVENT_READ, None)
                if now >= next_tick:
                    core.tick(now)
                    next_tick = now + core.tick_interval
                board = self.board
                if board is not None and board.due(now):
                    board.serve_relay(self, now)
                self._execute()
                self._flush_all()
                if turns is not None:
                    turns.end()
        finally:
            if turns is not None:
                turns.close()
            self._shut_down()

    def stop(self):
        """Ask the loop to finish, and wait for a background thread to end."""
        self._stopping = True
        if self._wake_send is not None:
            try:
                self._wake_send.send(b"x")
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
            self._thread = None

    def run_in_background(self):
        """Start serving in a daemon thread and return the relay."""
        if self._listener is None:
            self.start()
        self._thread = threading.Thread(target=self.serve_forever, name="nethelper-relay",
                                        daemon=True)
        self._thread.start()
        return self

    def __enter__(self):
        return self.run_in_background()

    def __exit__(self, *exc_info):
        self.stop()

    # -- socket events in -----------------------------------------------------

    def _accept_all(self):
        # A big batch: a whole class logging in at once gets in in one turn.
        for _ in range(_LISTEN_BACKLOG):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # Out of file descriptors (or memory): the waiting connection
                # stays queued and the listener stays readable, so asking
                # again at once would spin. Pause accepting for a moment.
                log.warning("could not accept a connection (%s); trying again in %g s",
                            exc.strerror or exc, _ACCEPT_PAUSE)
                self._selector.unregister(self._listener)
                self._accepting_again_at = time.monotonic() + _ACCEPT_PAUSE
                break
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = self.core.open(address, time.monotonic())
            conn.sock = sock
            self._sockets.add(conn)
            self._watch(conn)
        self._execute()

    def _service(self, conn, events):
        if conn.sock is None:
            return                  # closed by an earlier event of this same turn
        try:
            if events & selectors.EVENT_WRITE:
                self._send_pending(conn)
            if events & selectors.EVENT_READ and conn.sock is not None:
                self._read(conn)
        except Exception:       # a bug must cost one connection, never the relay
            log.exception("unexpected error serving %s", conn)
            self.core.connection_lost(conn, "dropped after an internal error", time.monotonic())
        self._execute()

    def _read(self, conn):
        if self._read_left <= 0:
            return      # this turn has read its share: the socket stays ready for the next
        try:
            size = conn.sock.recv_into(self._recv_buffer, self.core.read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.core.connection_lost(conn, "connection lost ({})".format(exc.strerror or exc),
                                      time.monotonic())
            return
        if size:
            self._read_left -= size
            self.core.receive(conn, self._recv_buffer[:size], time.monotonic())
        else:
            self.core.connection_lost(conn, None, time.monotonic())

    def _read_datagrams(self):
        for _ in range(64):         # a bounded batch: TCP connections come first
            try:
                data, address = self._udp.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:         # e.g. Windows reports an earlier ICMP error here
                continue
            self.core.datagram(data, address, self.port, time.monotonic())
        self._execute()

    def _drain_wake_socket(self):
        try:
            self._wake_recv.recv(512)
        except OSError:
            pass

    # -- actions out ----------------------------------------------------------

    def _execute(self):
        """Carry out what the core asked for. A send that finds its socket
        broken tells the core, whose answer joins the end of this same list."""
        actions = self.core.actions
        if not actions:
            return
        for kind, target, value in actions:
            if kind is SEND_BYTES:
                if target.sock is not None:
                    self._send(target, value)
            elif kind is CLOSE_CONN:
                self._close(target, value)
            elif kind is PAUSE_READING or kind is RESUME_READING:
                if target.sock is not None:
                    target.reading = kind is RESUME_READING
                    self._watch(target)
            elif kind is SEND_DATAGRAM:
                try:
                    self._udp.sendto(value, target)
                except OSError:
                    pass                # a datagram may be lost; the asker asks again
            else:
                log.log(target, "%s", value)
        del actions[:]

    def _send(self, conn, data):
        """Send ``data`` now if nothing is waiting for ``conn``, else queue it
        behind what is. Sending at once, rather than at the end of the turn,
        spares the frame waiting for every other socket's recv()."""
        if not conn.pending:
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._broken(conn, exc)
                return
            if sent == len(data):
                return
            if sent:
                data = memoryview(data)[sent:]      # the rest, not a copy of it
        # The bytes object itself is queued: a broadcast waiting for many
        # stuck readers is held once, not once per reader.
        conn.pending.append(data)
        conn.pending_size += len(data)
        self._want_flush.add(conn)
        self.core.backlogged(conn, conn.pending_size, time.monotonic())

    def _send_now(self, conn, data, many=False):
        """Send what the socket takes now and return how much that was, or
        None if the connection broke (the core is then told). With ``many``,
        ``data`` is a list of buffers, sent in one system call, not joined."""
        try:
            if many:
                return conn.sock.sendmsg(data)
            return conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._broken(conn, exc)
            return None

    def _flush_all(self):
        # What could not go out at once: one send per socket, whatever it holds.
        while self._want_flush:
            conn = self._want_flush.pop()
            if conn.sock is not None and not conn.watched & selectors.EVENT_WRITE:
                self._send_pending(conn)
        self._execute()

    def _send_pending(self, conn):
        pending = conn.pending
        if pending:
            if len(pending) > 1 and _SEND_MANY:
                sent = self._send_now(conn, list(itertools.islice(pending, _SEND_MANY)), True)
            else:
                sent = self._send_now(conn, pending[0])
            if sent is None:
                return
            conn.pending_size -= sent
            while sent:
                first = pending[0]
                if sent < len(first):
                    pending[0] = memoryview(first)[sent:]
                    break
                sent -= len(first)
                pending.popleft()
        self._watch(conn)
        if not conn.pending and conn.shut_when_sent:
            self._shut_write(conn)

    def _watch(self, conn):
        """Have the selector wait for what ``conn`` needs: reading unless the
        core paused it, writing while bytes wait for it. A paused sender with
        nothing waiting is not watched at all, so it costs nothing."""
        events = (selectors.EVENT_READ if conn.reading else 0) | (
            selectors.EVENT_WRITE if conn.pending else 0)
        if events == conn.watched:
            return
        if not conn.watched:
            self._selector.register(conn.sock, events, conn)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.watched = events

    def _broken(self, conn, exc):
        self.core.connection_lost(conn, "connection lost ({})".format(exc.strerror or exc),
                                  time.monotonic())

    def _close(self, conn, flush_first):
        if conn.sock is None:
            return
        if flush_first:
            # Closing only our side lets what is queued (a refusal, a
            # goodbye) arrive intact; the socket goes when the node hangs up,
            # or when the core gives up waiting.
            conn.shut_when_sent = True
            if not conn.pending:
                self._shut_write(conn)
            return
        self._want_flush.discard(conn)
        self._sockets.discard(conn)
        if conn.watched:
            self._selector.unregister(conn.sock)
            conn.watched = 0
        conn.sock.close()
        conn.sock = None
        conn.pending.clear()
        conn.pending_size = 0

    @staticmethod
    def _shut_write(conn):
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _shut_down(self):
        if self.board is not None:
            self.board.close()
        # Actions an interruption (Ctrl+C) cut short are dropped, not repeated.
        del self.core.actions[:]
        self.core.stop(time.monotonic())        # goodbyes, sent while they fit
        self._execute()
        if self._selector is not None:
            # Should an interruption have cut the closing short, close the rest.
            for conn in list(self._sockets):
                self._close(conn, False)
            self._selector.close()
            self._selector = None
        for sock in (self._listener, self._udp, self._wake_recv, self._wake_send):
            if sock is not None:
                sock.close()
        self._listener = self._udp = self._wake_recv = self._wake_send = None


# Actions: what RelayCore asks its driver to do, as (kind, target, value).
SEND_BYTES = "send"     # (SEND_BYTES, connection, bytes): send them, in order
CLOSE_CONN = "close"    # (CLOSE_CONN, connection, flush_first): close it; with flush_first,
                        #   only once what is queued for it has gone out
LOG_LINE = "log"        # (LOG_LINE, logging level, text): write a log line
SEND_DATAGRAM = "datagram"   # (SEND_DATAGRAM, address, bytes): send a UDP datagram there
PAUSE_READING = "pause"      # (PAUSE_READING, connection, until): read nothing from it until
                             #   RESUME_READING (a sender over its quota: TCP makes it wait)
RESUME_READING = "resume"    # (RESUME_READING, connection, None): read from it again

# A connection's states. Every change goes through RelayCore._move(), which
# checks it against this table.
JOINING = "joining"     # connected; reads only small frames, and only AUTH counts
MEMBER = "member"       # in a group: its DATA is forwarded, its REQs answered
OBSERVER = "observer"   # watches a group: gets a copy of its DATA, sends none, is in no PEERS
REFUSED = "refused"     # its AUTH was turned down: the refusal goes out, then it closes
CLOSING = "closing"     # dropped with a goodbye (SYSM 3): that goes out, then it closes
CLOSED = "closed"       # gone; nothing more happens to it

_NEXT_STATES = {
    JOINING: (MEMBER, OBSERVER, REFUSED, CLOSED),
    MEMBER: (CLOSING, CLOSED),
    OBSERVER: (CLOSING, CLOSED),
    REFUSED: (CLOSED,),
    CLOSING: (CLOSED,),
    CLOSED: (),
}

MAX_JOIN_FRAME_SIZE = 4096      # largest frame before joining (a real AUTH is < 300 bytes)
MAX_CONTROL_FRAME_SIZE = 4096   # largest AUTH, HEART, REQ or other non-DATA frame
MAX_PARTIAL_TOTAL = 16 * 1024 * 1024   # unfinished frames held for all connections together;
                                       #   past it a connection that reads more waits, ...
PARTIAL_HARD_LIMIT = 2                 # ... and past this many times it, it is dropped
ANNOUNCE_BATCH = 32             # PEERS lists sent per loop turn when a big group's list goes out
ANNOUNCE_SPACING = 0.002        # s per member between two PEERS lists to a big group
CLOSING_LINGER = 2.0            # a refused or closing node that does not hang up: closed
REFUSAL_LOG_LINES = 5           # refusal lines logged per address per window...
REFUSAL_LOG_WINDOW = 10.0       # ...of this many seconds; the rest are counted
SHORT_ECHO = 40                 # characters of a client's string echoed back or logged
GROUPS_LISTED = 10              # groups named in an "unknown group" refusal
STATUS_ANSWERS = 32             # status requests answered per connection before joining
STATUS_GROUPS = 100             # groups listed in a status answer ("more_groups": the rest)
DISCOVERY_RATE = 2.0            # discovery answers a second per address, ...
DISCOVERY_BURST = 5             # ... with bursts of this many
DISCOVERY_TOTAL_RATE = 200.0    # answers a second to everyone together
KICK_BAN = 60.0                 # s a kicked name may not rejoin from the same address
MESSAGE_LENGTH = 200            # characters of a teacher's message to a group
BOARD_EVENTS = 60               # recent events (joined, left, refused ...) kept for the board
BOARD_RECENT = 12               # sampled messages kept per group a board page watches
QUIET_AFTER = 3.0               # s unheard before the board marks a player and its group


class RelayCore:
    """The relay's rules, without sockets: fed events, it answers with actions.

    Events are method calls: ``open(address, now)`` (returns the new
    connection), ``receive(conn, data, now)``, ``connection_lost(conn, why,
    now)``, ``backlogged(conn, unsent_bytes, now)``, ``end_turn(now)``,
    ``tick(now)`` and ``stop(now)``. Each appends its answer to ``actions``
    (see SEND_BYTES, CLOSE_CONN, LOG_LINE), which the driver carries out and
    empties. ``now`` is a ``time.monotonic()`` reading, so tests can drive
    time by hand.

    Its settings (limits, quotas, timeouts) are the keyword arguments of
    scope "core" in RELAY_OPTIONS, where each is declared, checked and
    explained; each becomes an attribute (``core.quota_bytes``, ...), and
    ``core.settings`` holds them all. Quotas allow bursts of two seconds'
    worth, and at least one frame of the largest size.

    One more event comes from outside the TCP connections: ``datagram(data,
    address, port, now)``, a UDP datagram (a discovery query is answered with
    SEND_DATAGRAM, naming ``port``, the TCP port the relay serves).
    """

    def __init__(self, groups, names=None, **settings):
        groups = list(groups)
        self.settings = relay_settings("core", settings)
        for name, value in self.settings.items():
            setattr(self, name, value)          # self.quota_bytes, self.max_peers, ...
        if not (groups or self.any_group) or not all(isinstance(g, str) and g for g in groups):
            raise ValueError("a relay needs at least one group (or any_group), and group names "
                             "cannot be empty")
        self.name = self.name or typable_name(socket.gethostname())
        self.opened = set()         # any_group: the groups made for a game, gone when empty
        self.names = list(names) if names else list(_ANIMALS)
        for name in self.names:
            if name_problem(name):
                raise ValueError("cannot hand out the name {!r}: {}".format(name, name_problem(name)))
        random.shuffle(self.names)
        self.groups = {name: {} for name in groups}      # group -> {addr: connection}
        self.watchers = {name: [] for name in groups}    # group -> [observer connection]
        self.burst_bytes = max(2 * self.quota_bytes, self.max_frame_size)
        self.burst_frames = 2 * self.quota_frames
        self.max_partial_total = MAX_PARTIAL_TOTAL
        # The driver calls tick() this often: enough to keep every timer on time.
        self.tick_interval = max(0.005, min(0.5, self.heartbeat_interval / 2,
                                            self.liveness_timeout / 4, self.auth_timeout / 4,
                                            self.partial_frame_timeout / 4))
        self.actions = []
        self.connections = set()
        self._dirty_groups = set()       # groups whose new PEERS list is not made yet
        self._unsettled = set()          # those, and those whose list is still going out
        self._partial_total = 0          # bytes of unfinished frames, all connections
        self._room_taken = 0             # of which room kept for frames that may finish
        self._refusals_logged = {}       # host -> refusal lines logged this window
        self._refusals_quiet = {}        # host -> refusals not logged this window
        self._refusal_window_end = None
        self._next_summary = None
        self._discovery = _AnswerLimits()
        self._paused = set()             # connections not read for now (see PAUSE_READING)
        self._waiting_for_room = collections.deque()   # paused for the unfinished-frame budget
        self.next_resume = float("inf")  # when the first quota pause ends
        self._announcing = {}            # group -> [PEERS frame, members still to get it]
        self._announce_at = {}           # big group -> earliest time for its next PEERS list
        self._now = 0.0
        # The teacher's board (see Board): recent events, locked groups,
        # kicked names, and the taps of the groups a page watches.
        self.events = collections.deque(maxlen=BOARD_EVENTS)    # (now, kind, text)
        self.locked = set()
        self._bans = {}                  # (group, name, host) -> refused until
        self._taps = {}                  # group -> _Tap
        self._board_looked_at = None     # when board_state() last ran

    def members(self, group):
        """Names in ``group``, in the order they joined."""
        return [c.name for c in self.groups[group].values()]

    # -- events ----------------------------------------------------------------

    def open(self, address, now):
        """A connection was accepted from ``address`` (host, port, ...)."""
        self._now = now
        conn = _Connection(address, FrameReader(MAX_JOIN_FRAME_SIZE, MAX_CONTROL_FRAME_SIZE), now,
                           self.burst_bytes, self.burst_frames)
        self.connections.add(conn)
        if len(self.connections) > self.max_connections:
            self._refuse(conn, SERVER_FULL, "The relay is full ({} connections). Try again "
                         "later.".format(self.max_connections))
        return conn

    def receive(self, conn, data, now):
        """Bytes arrived from ``conn``."""
        state = conn.state
        if state is not MEMBER and state is not JOINING and state is not OBSERVER:
            return              # refused or closing: what it says no longer counts
        self._now = conn.last_heard = now
        conn.bytes_in += len(data)
        reader = conn.reader
        if state is MEMBER:
            # The hot path: one whole DATA frame (a game's usual send) goes
            # out as it came, never buffered nor decoded.
            whole = reader.whole_frame(data, DATA, conn.addr)
            if whole is not None:
                self._forward(conn, whole[0], whole[1])
                conn.byte_tokens -= len(data)
                conn.frame_tokens -= 1
                if conn.byte_tokens < 0 or conn.frame_tokens < 0:
                    self._slow_down(conn, now)
                return
        taken_before = reader.frames_taken
        reader.feed(data)
        unfinished = False
        try:
            while reader.buffered():
                state = conn.state
                if state is MEMBER:
                    # Runs of DATA frames go out as they came, in one piece,
                    # never decoded.
                    run = reader.next_run(DATA, conn.addr)
                    if run is not None:
                        self._forward(conn, run[0], run[1])
                        continue
                elif state is not JOINING and state is not OBSERVER:
                    break
                frame = reader.next_frame()
                if frame is None:
                    unfinished = True
                    break
                self._handle(conn, frame)
        except ProtocolError as exc:
            self._bad_input(conn, exc)
        taken = reader.frames_taken - taken_before
        # Charged after the fact: what was read is passed on, never dropped;
        # a sender that overdrew its allowance is not read again until it
        # has paid it back (see _slow_down).
        conn.byte_tokens -= len(data)
        conn.frame_tokens -= taken
        if conn.byte_tokens < 0 or conn.frame_tokens < 0:
            self._slow_down(conn, now)
        if unfinished or conn.partial_size:
            self._note_partial(conn, taken, now)

    def connection_lost(self, conn, why, now):
        """The connection closed or broke. ``why`` is None for a plain close
        by the other side."""
        self._now = now
        if conn.state is CLOSED:
            return
        if conn.state is MEMBER or conn.state is OBSERVER:
            self._leave(conn, why or "left")
        elif conn.state is JOINING:
            # A --check probe asked for the status and hung up: routine.
            self._log(logging.DEBUG if conn.status_answers else logging.INFO,
                      "closed   {} ({})".format(conn.where, why or "closed before joining"))
        self._finish(conn)

    def backlogged(self, conn, unsent, now):
        """``unsent`` bytes wait for ``conn``: the socket takes no more for now."""
        if unsent > self.max_pending and conn.state is not CLOSED:
            self._now = now
            why = "too slow: its game did not read what was sent to it, over {} bytes " \
                  "waited".format(self.max_pending)
            if conn.state is MEMBER or conn.state is OBSERVER:
                self._leave(conn, why, logging.WARNING)   # no goodbye: it would not get through
            self._finish(conn)

    def end_turn(self, now):
        """The driver has handled every event of one loop turn. Senders whose
        pause (see PAUSE_READING) is over are read again: a driver calls this
        by ``next_resume`` at the latest."""
        if now >= self.next_resume:
            self._resume(now)
        if self._waiting_for_room and self._room_taken < self.max_partial_total:
            self._make_room(now)
        if self._dirty_groups:
            self._now = now
            for group in list(self._dirty_groups):
                if now >= self._announce_at.get(group, 0.0):
                    self._announce(group)
        if self._announcing:
            self._now = now
            self._announce_some(ANNOUNCE_BATCH)

    def next_wake(self):
        """When the driver must call end_turn() next, at the latest (a
        ``time.monotonic()`` reading; inf: no sooner than it likes)."""
        wake = self.next_resume
        if self._announcing:
            return self._now
        for group in self._dirty_groups:
            wake = min(wake, self._announce_at.get(group, 0.0))
        return wake

    def tick(self, now):
        """Time passed: timeouts, heartbeats, quota refills and summaries."""
        self._now = now
        for conn in list(self.connections):
            state = conn.state
            # A paused sender is not read: its silence and its unfinished
            # frame are the relay's doing, not its own.
            paused = conn.paused_until is not None
            if state is MEMBER or state is OBSERVER:
                if now - conn.last_heard > self.liveness_timeout and not paused:
                    self._goodbye(conn, TIMEOUT, "silent for {:g} s".format(self.liveness_timeout),
                                  "Nothing arrived from this game for {:g} s.".format(
                                      self.liveness_timeout))
                    continue
                if now - conn.last_sent >= self.heartbeat_interval:
                    self._send(conn, encode_frame(HEART, conn.addr, RELAY_ADDR, b"null"))
                self._refill(conn, now)
            elif state is JOINING:
                if now - conn.opened_at > self.auth_timeout:
                    self._log(logging.INFO, "closed   {} (did not ask to join within {:g} "
                              "s)".format(conn.where, self.auth_timeout))
                    self._finish(conn)
                    continue
                self._refill(conn, now)
            elif now - conn.closing_since > CLOSING_LINGER:
                self._finish(conn)              # it never hung up after its last words
                continue
            started = conn.partial_since
            if started is not None and now - started > self.partial_frame_timeout and not paused:
                self._drop_for_partial(conn, "a frame it started did not arrive within {:g} "
                                       "s".format(self.partial_frame_timeout), TIMEOUT)
        if self._refusal_window_end is not None and now >= self._refusal_window_end:
            for host, count in self._refusals_quiet.items():
                self._log(logging.WARNING, "{} more refusals from {}".format(count, host))
            self._refusals_logged.clear()
            self._refusals_quiet.clear()
            self._refusal_window_end = None
        if self._next_summary is None:
            self._next_summary = now + self.summary_interval
        elif now >= self._next_summary:
            since = self._next_summary - self.summary_interval     # the last summary
            self._next_summary = now + self.summary_interval
            self._summarize(now, now - since)

    def stop(self, now):
        """The relay is shutting down: a goodbye to each member, then close all."""
        self._now = now
        self._dirty_groups.clear()          # no PEERS lists: everyone is leaving
        self._announcing.clear()
        for conn in list(self.connections):
            if conn.state is MEMBER or conn.state is OBSERVER:
                self._send(conn, sysm_frame(conn.addr, SYSM_GOODBYE, RELAY_STOPPING,
                                            "The relay was stopped."))
                self._leave(conn, "relay stopped")
            self._finish(conn)
        self._dirty_groups.clear()
        self._unsettled.clear()

    def datagram(self, data, address, port, now):
        """A UDP datagram arrived from ``address``. A well-formed discovery
        query is answered (SEND_DATAGRAM) with ``port``, the relay's TCP
        port, at most DISCOVERY_RATE times a second per address; anything
        else is ignored without a word."""
        self._now = now
        if parse_discovery_query(data) is None or not self._discovery.allow(address[0], now):
            return
        info = self._about()
        info["port"] = port
        if not self.private:
            info["groups"] = {g: len(m) for g, m in self.groups.items()}
        answer = discovery_answer(info, len(data))
        if answer is not None:
            self.actions.append((SEND_DATAGRAM, address, answer))

    # -- the teacher's board: its commands, and what it shows ----------------------

    def kick(self, group, name, reason, now):
        """Drop player ``name`` from ``group`` with a goodbye (SYSM 3
        ``kicked``) that gives ``reason``; that name from that address is
        refused for KICK_BAN seconds. False if there is no such player."""
        self._now = now
        conn = next((c for c in self.groups.get(group, {}).values() if c.name == name), None)
        if conn is None:
            return False
        reason = _one_line(reason, MESSAGE_LENGTH) or "no reason given"
        self._bans[(group, name, conn.host)] = now + KICK_BAN
        self._goodbye(conn, KICKED, "removed by the teacher: {}".format(reason),
                      "The teacher removed this game from the group: {} (it may join again "
                      "in {:.0f} s)".format(reason, KICK_BAN))
        return True

    def lock(self, group, locked, now):
        """Lock ``group`` (no new players; those in it stay) or unlock it.
        False if the relay has no such group."""
        self._now = now
        if group not in self.groups:
            return False
        if locked:
            self.locked.add(group)
        else:
            self.locked.discard(group)
        self._log(logging.INFO, "{} {} (by the teacher)".format(
            "locked  " if locked else "unlocked", group), "locked" if locked else "unlocked")
        return True

    def tell(self, group, text, now):
        """Send everyone in ``group`` (watchers too) the teacher's message, a
        SYSM 7; returns how many got it, or None for an unknown group."""
        self._now = now
        if group not in self.groups:
            return None
        text = _one_line(text, MESSAGE_LENGTH)
        if not text:
            return 0
        receivers = list(self.groups[group].values()) + self.watchers[group]
        for conn in receivers:
            self._send(conn, sysm_frame(conn.addr, SYSM_MESSAGE, "teacher", text))
        self._log(logging.INFO, "message  {}: {}".format(group, _echo(text)), "message")
        return len(receivers)

    def board_state(self, now, watched=(), courts=(), round_trip=None):
        """What the board shows, as a dict ready for JSON: every group with
        its players and rates since the last call, totals and recent events.
        For the groups in ``watched`` (those a page watches), also the
        latest sampled messages and, for Pong, the court; for those in
        ``courts``, the court only. Watching starts a group's tap here; a
        group in neither loses its tap. ``round_trip(conn)`` gives a
        connection's round trip in ms, or None."""
        self._now = now
        watched = set(watched) & set(self.groups)
        self._watch_only(watched | (set(courts) & set(self.groups)))
        looked = self._board_looked_at
        self._board_looked_at = now
        groups, total_rate = [], 0.0
        for group, members in self.groups.items():
            players, rate = [], 0.0
            for conn in members.values():
                frames, size, since = conn.board_mark
                conn.board_mark = (conn.reader.frames_taken, conn.bytes_in, now)
                seconds = max(now - since, 1e-3)
                player_rate = (conn.reader.frames_taken - frames) / seconds
                rate += player_rate
                players.append({
                    "name": conn.name, "addr": conn.addr, "where": conn.where,
                    "rtt_ms": round_trip(conn) if round_trip else None,
                    "msgs_s": int(player_rate * 10 + 0.5) / 10,
                    "bytes_s": int((conn.bytes_in - size) / seconds),
                    "heard_s": int((now - conn.last_heard) * 10) / 10,
                    "waiting": conn.pending_size})
            total_rate += rate
            entry = {"name": group, "players": players, "watchers": len(self.watchers[group]),
                     "locked": group in self.locked, "msgs_s": int(rate * 10 + 0.5) / 10,
                     "quiet": any(p["heard_s"] >= QUIET_AFTER for p in players)}
            tap = self._taps.get(group)
            if tap is not None:
                entry["court"] = tap.look(now, members, group in watched)
                if group in watched:
                    entry["recent"] = [[round(now - when, 1), who, to, title, text]
                                       for when, who, to, title, text in tap.recent]
            groups.append(entry)
        return {"groups": groups, "connections": len(self.connections),
                "players": sum(len(m) for m in self.groups.values()),
                "msgs_s": round(total_rate, 1), "since_last_s": None if looked is None else
                round(now - looked, 2), "events": self._event_list(now)}

    def _event_list(self, now):
        """[[seconds ago, kind, text], ...] of the recent events."""
        return [[int((now - when) * 10) / 10, kind, text] for when, kind, text in self.events]

    def _watch_only(self, groups):
        """Taps on exactly these groups: their members' DATA runs are kept
        (not read) until board_state() samples them."""
        for group in list(self._taps):
            if group not in groups:
                del self._taps[group]
                for conn in self.groups[group].values():
                    conn.tap = None
        for group in groups:
            if group not in self._taps:
                tap = self._taps[group] = _Tap()
                for conn in self.groups[group].values():
                    conn.tap = tap

    def _banned(self, group, name, host):
        """Seconds left of a kick's ban on this name from this address (0: none)."""
        until = self._bans.get((group, name, host))
        if until is None:
            return 0
        if until <= self._now:
            del self._bans[(group, name, host)]
            return 0
        return until - self._now

    # -- what frames do ------------------------------------------------------------

    def _handle(self, conn, frame):
        """One frame that is not part of a forwarded DATA run."""
        if frame.type == AUTH:
            if conn.state is JOINING:
                self._authenticate(conn, frame)
            return
        if conn.state is JOINING:
            if frame.type == REQ:
                self._request(conn, frame)      # only a status request counts
            return                  # nothing else counts before AUTH is accepted
        if frame.sender != conn.addr:
            self._log(logging.DEBUG, "ignored a frame from {} with forged sender {}".format(
                conn, frame.sender))
        elif frame.type == REQ:
            self._request(conn, frame)
        elif frame.type == DATA:
            self._log(logging.DEBUG, "ignored DATA from {}, who only watches".format(conn))
        # HEART only needs to have arrived; unknown types are ignored.

    def _forward(self, conn, dest, data):
        """Pass DATA frames (their bytes unchanged) on to ``dest`` in ``conn``'s group."""
        if self._unsettled and conn.group in self._unsettled:
            self._settle(conn.group)        # so that the receivers know who sends
        members = conn.members
        now = self._now
        append = self.actions.append
        if dest == ALL_ADDR:
            sender = conn.addr
            for addr, member in members.items():
                if addr != sender:
                    member.last_sent = now
                    append((SEND_BYTES, member, data))
        else:
            member = members.get(dest)
            if member is not None:
                member.last_sent = now
                append((SEND_BYTES, member, data))
        watchers = conn.watchers
        if watchers:                    # (an empty list: the usual case costs one test)
            for watcher in watchers:
                watcher.last_sent = now
                append((SEND_BYTES, watcher, data))
        tap = conn.tap
        if tap is not None:             # a board page watches this group: keep, do not read
            tap.latest[conn.addr] = data

    def _request(self, conn, frame):
        try:
            request = parse_typed(frame.payload)
        except ProtocolError as exc:
            self._log(logging.DEBUG, "ignored a REQ from {}: {}".format(conn, exc))
            return
        kind = request["type"]
        if kind == REQ_STATUS:
            if conn.status_answers < STATUS_ANSWERS:
                conn.status_answers += 1
                self._send(conn, sysm_frame(conn.addr, SYSM_STATUS, "status", self._status()))
        elif conn.state is JOINING:
            pass                        # nothing else counts before AUTH is accepted
        elif kind == REQ_LEAVE:
            self._leave(conn, "left")
            self._finish(conn)
        elif kind == REQ_PEERS:
            if conn.state is OBSERVER:
                self._send(conn, self._players_frame(conn.group))
            else:
                self._send(conn, peers_frame(conn.addr, self._peer_list(conn.group)))
        elif kind == REQ_PING and type(request.get("data")) is int:
            # Echo a number only: the answer is never bigger than the question.
            self._send(conn, sysm_frame(conn.addr, SYSM_PONG, "pong", request["data"]))

    def _about(self):
        """What both a discovery answer and a status answer begin with."""
        about = {"relay": "nethelper", "name": self.name, "version": __version__,
                 "protocol": PROTOCOL_VERSION.decode("ascii"),
                 "players": sum(len(m) for m in self.groups.values())}
        if self.any_group:
            about["any_group"] = True       # (a fact about the relay, not a list of groups)
        return about

    def _status(self):
        """What a status request (REQ 2) is told: see PROTOCOL.md."""
        status = self._about()
        status.update(observers=True, max_players=self.max_peers)
        if not self.private:
            names = list(self.groups)
            status["groups"] = {g: len(self.groups[g]) for g in names[:STATUS_GROUPS]}
            if len(names) > STATUS_GROUPS:
                status["more_groups"] = len(names) - STATUS_GROUPS
        return status

    def _authenticate(self, conn, frame):
        try:
            name, group, observer = parse_join(frame.payload)
        except ProtocolError as exc:
            self._refuse(conn, BAD_REQUEST, "The request to join was malformed ({}).".format(exc))
            return
        members = self.groups.get(group)
        if members is None and self.any_group:
            if name_problem(group):
                self._refuse(conn, BAD_REQUEST, "Cannot make group {}: {}".format(
                    _echo(group), name_problem(group)))
                return
            members = self._open_group(group, conn)
        if members is None:
            if self.private:
                known = "Check the group's name with whoever runs the relay."
            else:
                known = "Its groups: {}.".format(_listing(sorted(self.groups), GROUPS_LISTED))
            self._refuse(conn, UNKNOWN_GROUP, "This relay has no group {}. {}".format(
                _echo(group), known))
        elif name and name_problem(name):
            self._refuse(conn, BAD_REQUEST, name_problem(name))
        elif observer:
            if len(self.watchers[group]) >= self.max_observers:
                self._refuse(conn, GROUP_FULL, "Group {} already has {} watching, the most it "
                             "may have.".format(_echo(group), self.max_observers))
            else:
                self._admit_observer(conn, name or "watcher", group)
        elif group in self.locked:
            self._refuse(conn, GROUP_LOCKED, "The teacher has locked group {}: no new players "
                         "may join it for now.".format(_echo(group)))
        elif name and self._banned(group, name, conn.host):
            self._refuse(conn, KICKED, "The teacher removed {} from group {}; it may join again "
                         "in {:.0f} s.".format(_echo(name), _echo(group), self._banned(
                             group, name, conn.host)))
        elif len(members) >= self.max_peers:
            # Before the name: a full group is "full", whatever name is tried.
            self._refuse(conn, GROUP_FULL, "Group {} is full ({} of {} players).".format(
                _echo(group), len(members), self.max_peers))
        elif name and any(m.name == name for m in members.values()):
            self._refuse(conn, NAME_TAKEN, "The name {} is already taken in group {}.".format(
                _echo(name), _echo(group)))
        elif not name:
            chosen = self._choose_name(members)
            if chosen is None:
                self._refuse(conn, SERVER_FULL, "The relay has no free name left to give in "
                             "group {}. Choose a name yourself.".format(_echo(group)))
            else:
                self._send(conn, sysm_frame(UNKNOWN_ADDR, SYSM_NAME, None, chosen))
                self._admit(conn, chosen, group)
        else:
            self._admit(conn, name, group)
        if group in self.opened:
            self._close_if_empty(group, said=False)     # made for a game then refused

    def _open_group(self, group, conn):
        """An open relay (any_group) makes the group a game asks for."""
        self.groups[group], self.watchers[group] = {}, []
        self.opened.add(group)
        return self.groups[group]

    def _note_if_new(self, group):
        """The summary shows the groups of an open relay as they appear."""
        if group in self.opened and not self.groups[group] and not self.watchers[group]:
            self._log(logging.INFO, "new group {}".format(group))

    def _close_if_empty(self, group, said=True):
        """A group made for a game goes when nobody is left in it."""
        if group in self.opened and not self.groups[group] and not self.watchers[group]:
            del self.groups[group], self.watchers[group]
            self.opened.discard(group)
            for pending in (self._dirty_groups, self._unsettled):
                pending.discard(group)          # (no one is left to tell)
            self._announcing.pop(group, None)
            self._announce_at.pop(group, None)
            if said:
                self._log(logging.INFO, "group {} is empty: it goes".format(group))

    def _admit(self, conn, name, group):
        self._note_if_new(group)
        members = self.groups[group]
        self._move(conn, MEMBER)
        conn.name, conn.group, conn.members = name, group, members
        conn.watchers = self.watchers[group]
        conn.addr = next(a for a in range(1, MAX_NODES_PER_GROUP + 1) if a not in members)
        conn.last_sent = self._now
        conn.reader.max_frame_size = self.max_frame_size
        members[conn.addr] = conn
        conn.tap = self._taps.get(group)
        self._log(logging.INFO, "joined   {}: {} from {}".format(group, name, conn.where),
                  "joined")
        self._dirty_groups.add(group)
        self._unsettled.add(group)

    def _admit_observer(self, conn, name, group):
        """An observer: gets the group's players (SYSM 5) and a copy of every
        DATA frame; is in no PEERS list; keeps its small frame limit."""
        self._note_if_new(group)
        self._move(conn, OBSERVER)
        conn.name, conn.group, conn.members = name, group, self.groups[group]
        conn.watchers = self.watchers[group]
        conn.watchers.append(conn)
        self._log(logging.INFO, "watching {}: {} from {}".format(group, name, conn.where),
                  "watching")
        self._send(conn, self._players_frame(group))

    # -- quotas and unfinished frames -----------------------------------------------

    def _slow_down(self, conn, now):
        """``conn`` overdrew its allowance (its buckets went below zero).
        Nothing it sent is lost: the relay just stops reading from it
        (PAUSE_READING) until the refill has paid the debt back, so TCP makes
        it wait, receivers get no more than its quota over time, and a paused
        flooder costs the relay nothing. It is told once (SYSM 2). Before
        joining, a program has no business sending that much: it is closed."""
        self._refill(conn, now)
        owed = max(-conn.byte_tokens / self.quota_bytes, -conn.frame_tokens / self.quota_frames)
        if owed <= 0:
            return
        state = conn.state
        why = "over its quota of {} bytes and {} frames a second".format(
            self.quota_bytes, self.quota_frames)
        if state is JOINING:
            self._log(logging.WARNING, "closed   {} ({} before joining)".format(conn.where, why))
            self._finish(conn)
            return
        if state is not MEMBER and state is not OBSERVER:
            return
        if conn.warned_at is None:
            conn.warned_at = now
            self._log(logging.WARNING, "slowed   {}: {}: {} (the relay reads from it no faster "
                      "than that; nothing is lost)".format(conn.group, conn, why), "warned")
            self._send(conn, sysm_frame(conn.addr, SYSM_WARNING, OVER_QUOTA,
                                        "This game sends more than its share ({} bytes and {} "
                                        "messages a second): the relay takes its messages "
                                        "more slowly.".format(self.quota_bytes, self.quota_frames)))
        until = now + owed
        if conn.paused_until is None:
            self.actions.append((PAUSE_READING, conn, until))
        conn.paused_until = max(until, conn.paused_until or until)   # (a wait for room is longer)
        self._paused.add(conn)
        if until < self.next_resume:
            self.next_resume = until

    def _resume(self, now):
        """Read again from the paused senders that have paid their debt back."""
        next_resume = float("inf")
        for conn in list(self._paused):
            until = conn.paused_until
            if until > now:
                next_resume = min(next_resume, until)
                continue
            self._unpause(conn)
            conn.last_heard = now           # its timers start again from here
            if conn.partial_since is not None:
                conn.partial_since = now
            self._refill(conn, now)
        self.next_resume = next_resume

    def _unpause(self, conn):
        if conn.paused_until is not None:
            conn.paused_until = None
            self._paused.discard(conn)
            self.actions.append((RESUME_READING, conn, None))

    def _refill(self, conn, now):
        elapsed = now - conn.refilled_at
        conn.refilled_at = now
        conn.byte_tokens = min(self.burst_bytes, conn.byte_tokens + elapsed * self.quota_bytes)
        conn.frame_tokens = min(self.burst_frames, conn.frame_tokens + elapsed * self.quota_frames)

    def _note_partial(self, conn, frames_taken, now):
        """Keep count of the unfinished frame ``conn`` holds, in total too.
        A frame under way counts at its full length once its header is in:
        that much room is kept for it, so that it can finish. A frame there
        is no room for waits, unread (PAUSE_READING), holding only what it
        has, until frames that had room finish or time out; the longest
        waiting goes first (see _make_room). Nobody is dropped for it unless
        a driver goes on reading from waiting connections."""
        if conn.state is CLOSING or conn.state is REFUSED or conn.state is CLOSED:
            return                  # no longer read: what it holds is not counted
        reader = conn.reader
        left = reader.buffered()
        if not left:
            self._forget_partial(conn)
            return
        if frames_taken or conn.partial_since is None:
            conn.partial_since = now        # a new frame started: its own deadline
        length = reader.unfinished_length()
        if frames_taken or conn.room < length:          # not the frame room was kept for
            self._room_taken -= conn.room
            conn.room = 0
            if conn.paused_until == float("inf"):
                pass                        # waits for room: holds what it has, no more
            elif (self._room_taken + length <= self.max_partial_total
                  and not self._waiting_for_room):     # (no jumping the queue)
                conn.room = length          # room kept for the whole frame
                self._room_taken += length
            else:
                self._wait_for_room(conn)
        counted = max(conn.room, left)
        self._partial_total += counted - conn.partial_size
        conn.partial_size = counted
        if self._partial_total > PARTIAL_HARD_LIMIT * self.max_partial_total:
            self._drop_for_partial(conn, "the relay holds {} bytes of unfinished frames, "
                                   "over its limit".format(self._partial_total), OVER_QUOTA)

    def _wait_for_room(self, conn):
        if conn.paused_until is None:
            self.actions.append((PAUSE_READING, conn, None))
        conn.paused_until = float("inf")
        self._paused.add(conn)
        self._waiting_for_room.append(conn)

    @property
    def read_size(self):
        """How much a driver reads from one connection at a time: less while
        the unfinished-frame budget is used up, so that the connections read
        before they are paused add little to it."""
        if self._partial_total > self.max_partial_total:
            return MAX_CONTROL_FRAME_SIZE
        return _RECV_SIZE

    def _make_room(self, now):
        """Unfinished frames finished or timed out: read again from the
        connections that waited longest for room, as long as their frames fit.
        Room is counted for the frames it was kept for, so that what waiting
        connections hold cannot keep everyone waiting."""
        waiting = self._waiting_for_room
        while waiting:
            conn = waiting[0]
            if conn.paused_until != float("inf"):
                waiting.popleft()           # gone, or no longer waiting
                continue
            length = conn.reader.unfinished_length()
            if self._room_taken + length > self.max_partial_total:
                return
            waiting.popleft()
            conn.room = length
            self._room_taken += length
            self._partial_total += length - conn.partial_size
            conn.partial_size = length
            self._unpause(conn)
            conn.last_heard = conn.partial_since = now     # its timers start again from here

    def _drop_for_partial(self, conn, why, reason):
        if conn.state is MEMBER or conn.state is OBSERVER:
            self._goodbye(conn, reason, why, "Dropped by the relay: {}.".format(why))
        else:
            if conn.state is JOINING:
                self._log(logging.INFO, "closed   {} ({})".format(conn.where, why))
            self._finish(conn)

    # -- leaving -----------------------------------------------------------------------

    def _bad_input(self, conn, exc):
        if conn.state is JOINING:
            if exc.code == "version":
                self._refuse(conn, WRONG_VERSION, "This relay speaks nethelper protocol 020 and "
                             "cannot understand your game ({}).".format(exc))
            else:
                self._log(logging.INFO, "closed   {} (dropped for bad input: {})".format(
                    conn.where, exc))
                self._finish(conn)
        elif conn.state is MEMBER or conn.state is OBSERVER:
            self._goodbye(conn, BAD_FRAME, "dropped for bad input: {}".format(exc),
                          "The relay could not read what this game sent ({}).".format(exc))

    def _refuse(self, conn, reason, sentence):
        """Tell a node why it cannot join, then close once that is sent."""
        # A taken name is the ordinary join of Player 2 (it tries "Player1"
        # first): not a problem for whoever runs the relay.
        self._log_refusal(conn, "refused  {}: {} ({})".format(conn.where, reason, sentence),
                          logging.INFO if reason == NAME_TAKEN else logging.WARNING)
        self._send(conn, sysm_frame(UNKNOWN_ADDR, SYSM_REFUSED, reason, sentence))
        self._move(conn, REFUSED)
        conn.closing_since = self._now
        self._forget_partial(conn)
        self._unpause(conn)           # to hear it hang up
        self.actions.append((CLOSE_CONN, conn, True))

    def _goodbye(self, conn, reason, why, sentence):
        """Drop a member, telling it why (SYSM 3) first."""
        self._send(conn, sysm_frame(conn.addr, SYSM_GOODBYE, reason, sentence))
        self._leave(conn, why, logging.INFO if reason == TIMEOUT else logging.WARNING,
                    "kicked" if reason == KICKED else "dropped")
        self._move(conn, CLOSING)
        conn.closing_since = self._now
        self._forget_partial(conn)
        self._unpause(conn)           # to hear it hang up
        self.actions.append((CLOSE_CONN, conn, True))

    def _leave(self, conn, why, level=logging.INFO, kind=None):
        """A member leaves its group; the others get a new PEERS list. An
        observer just stops watching. Problems name the address too."""
        where = " from {}".format(conn.where) if level >= logging.WARNING else ""
        kind = kind or ("dropped" if level >= logging.WARNING else "left")
        if conn.state is OBSERVER:
            conn.watchers.remove(conn)
            self._log(level, "stopped watching {}: {} ({}){}".format(
                conn.group, conn.name, why, where), kind)
        else:
            conn.members.pop(conn.addr, None)     # (once more if Ctrl+C cut the first short)
            self._log(level, "left     {}: {} ({}){}".format(conn.group, conn.name, why, where),
                      kind)
            self._dirty_groups.add(conn.group)
            self._unsettled.add(conn.group)
        if conn.group in self.opened:
            self._close_if_empty(conn.group)

    def _finish(self, conn):
        """Close at once, whatever is still queued."""
        self._move(conn, CLOSED)
        self.connections.discard(conn)
        self._forget_partial(conn)
        if conn.paused_until is not None:
            conn.paused_until = None
            self._paused.discard(conn)
        self.actions.append((CLOSE_CONN, conn, False))

    def _forget_partial(self, conn):
        self._partial_total -= conn.partial_size
        self._room_taken -= conn.room
        conn.partial_size = conn.room = 0
        conn.partial_since = None

    def _move(self, conn, state):
        if state not in _NEXT_STATES[conn.state]:
            raise RuntimeError("a connection cannot go from {} to {}".format(conn.state, state))
        conn.state = state

    # -- small helpers --------------------------------------------------------------------

    def _send(self, conn, data):
        conn.last_sent = self._now
        self.actions.append((SEND_BYTES, conn, data))

    def _log(self, level, text, kind=None):
        """A log line; one with a ``kind`` (joined, left, refused, ...) is
        also kept among the recent events the teacher's board lists."""
        self.actions.append((LOG_LINE, level, text))
        if kind is not None:
            self.events.append((self._now, kind, text))

    def _log_refusal(self, conn, text, level):
        """Refusal lines, at most REFUSAL_LOG_LINES per address per window."""
        logged = self._refusals_logged.get(conn.host, 0)
        if logged < REFUSAL_LOG_LINES:
            self._refusals_logged[conn.host] = logged + 1
            # (A taken name is Player 2's routine join: not an event for the board.)
            self._log(level, text, "refused" if level >= logging.WARNING else None)
        else:
            self._refusals_quiet[conn.host] = self._refusals_quiet.get(conn.host, 0) + 1
        if self._refusal_window_end is None:
            self._refusal_window_end = self._now + REFUSAL_LOG_WINDOW

    def _announce(self, group):
        """Make the group's new PEERS list and start sending it. A big group
        gets it ANNOUNCE_BATCH members a turn (other groups' frames go between),
        and at most one list every ANNOUNCE_SPACING s per member: members who
        join and leave over and over cannot keep the relay busy announcing."""
        self._dirty_groups.discard(group)
        if group not in self.groups:
            return
        members = self.groups[group]
        if members:
            frame = peers_frame(ALL_ADDR, self._peer_list(group))
            if len(members) > ANNOUNCE_BATCH:
                self._announce_at[group] = self._now + ANNOUNCE_SPACING * len(members)
                self._announcing[group] = [frame, list(members.values())]
            else:
                self._unsettled.discard(group)
                self._announcing.pop(group, None)
                for member in members.values():
                    self._send(member, frame)
        else:
            self._unsettled.discard(group)
            self._announcing.pop(group, None)
        watchers = self.watchers[group]
        if watchers:
            frame = self._players_frame(group)
            for watcher in watchers:
                self._send(watcher, frame)

    def _announce_some(self, count):
        """Send up to ``count`` frames of the PEERS lists that are going out."""
        for group, (frame, waiting) in list(self._announcing.items()):
            while waiting and count > 0:
                member = waiting.pop()
                if member.state is MEMBER and member.group == group:     # not left since
                    self._send(member, frame)
                    count -= 1
            if waiting:
                return
            del self._announcing[group]
            if group not in self._dirty_groups:
                self._unsettled.discard(group)

    def _settle(self, group):
        """Every member of ``group`` gets its latest PEERS list, now."""
        if group in self._dirty_groups:
            self._announce(group)
        if group in self._announcing:
            frame, waiting = self._announcing.pop(group)
            for member in waiting:
                if member.state is MEMBER and member.group == group:
                    self._send(member, frame)
        self._unsettled.discard(group)

    def _peer_list(self, group):
        return [(c.name, addr) for addr, c in self.groups[group].items()]

    def _players_frame(self, group):
        """An observer's PEERS: SYSM 5 with the players, which it is not among."""
        return sysm_frame(UNKNOWN_ADDR, SYSM_PLAYERS, "players",
                          [{"name": n, "addr": a} for n, a in self._peer_list(group)])

    def _summarize(self, now, elapsed):
        """Per group with players: who, messages a second, the slowest player."""
        elapsed = max(elapsed, 1e-9)
        for group, members in self.groups.items():
            frames = 0
            for conn in members.values():
                frames += conn.reader.frames_taken - conn.summary_frames
                conn.summary_frames = conn.reader.frames_taken
            if not members:
                continue
            slowest = max(members.values(), key=lambda c: (c.pending_size, now - c.last_heard))
            watching = len(self.watchers[group])
            names = _listing([c.name for c in members.values()], GROUPS_LISTED)   # one line
            self._log(logging.INFO, "group {}: {} player{} ({}), {:.0f} messages/s; slowest: {} "
                      "(heard {:.1f} s ago, {} bytes waiting for it){}".format(
                          group, len(members), "" if len(members) == 1 else "s",
                          names, frames / elapsed,
                          slowest.name, now - slowest.last_heard, slowest.pending_size,
                          ", {} watching".format(watching) if watching else ""))

    def _choose_name(self, members):
        """A free name from the list, numbered once the list is used up (cut
        to fit the length limit); None if even the numbered ones are taken."""
        taken = {c.name for c in members.values()}
        bases = self.names[:MAX_NODES_PER_GROUP + 1]    # enough: a group holds 254 names
        for number in range(1, MAX_NODES_PER_GROUP + 2):
            suffix = str(number) if number > 1 else ""
            for base in bases:
                candidate = base[:MAX_NAME_LENGTH - len(suffix)] + suffix
                if candidate not in taken:
                    return candidate
        return None


class _AnswerLimits:
    """Token buckets for discovery answers: one per address, one for everybody."""

    __slots__ = ("buckets", "total")

    def __init__(self):
        self.buckets = {}                       # host -> (answers left, when counted)
        self.total = (DISCOVERY_TOTAL_RATE, 0.0)

    def allow(self, host, now):
        left, since = self.total
        left = min(DISCOVERY_TOTAL_RATE, left + (now - since) * DISCOVERY_TOTAL_RATE)
        if left < 1:
            self.total = (left, now)
            return False
        if len(self.buckets) > 4096:            # a flood of forged addresses
            self.buckets.clear()
        mine, since = self.buckets.get(host, (DISCOVERY_BURST, now))
        mine = min(DISCOVERY_BURST, mine + (now - since) * DISCOVERY_RATE)
        if mine < 1:
            self.buckets[host] = (mine, now)
            self.total = (left, now)
            return False
        self.buckets[host] = (mine - 1, now)
        self.total = (left - 1, now)
        return True


class _Tap:
    """A group a board page watches. The relay keeps, unread, each sender's
    latest DATA run (RelayCore._forward: one dict store per frame); look()
    reads the last frame of each when the board asks (at most twice a
    second), so a busy game costs the relay no parsing. What is read is a
    sample: a score is right when the game repeats it (this project's Pong
    sends it in every ball_pos); a lone "b1" or game_start counts only if
    it is the latest message when the board looks."""

    __slots__ = ("latest", "court", "recent")

    def __init__(self):
        self.latest = {}             # sender addr -> the bytes of its latest DATA run
        self.court = {"ball": None, "bars": {}, "score": [0, 0], "pong": False}
        self.recent = collections.deque(maxlen=BOARD_RECENT)   # (when, from, to, title, text)

    def look(self, now, members, with_recent):
        """Read what was kept since the last look: the court, and (with
        ``with_recent``) the messages of each sender's latest run added to
        ``recent``."""
        court = self.court
        latest = self.latest
        if latest:
            self.latest = {}
            names = {addr: c.name for addr, c in members.items()}
            for run in latest.values():
                dest, sender, messages = _last_data(run)
                self._see(messages, names.get(sender))
                for title, content, _ in messages if with_recent else ():
                    self.recent.append((now, names.get(sender, "address {}".format(sender)),
                                        "everyone" if dest == ALL_ADDR else names.get(
                                            dest, "address {}".format(dest)),
                                        title, _shorten(json.dumps(content, ensure_ascii=False),
                                                        60)))
            present = set(names.values())
            court["bars"] = {n: xy for n, xy in court["bars"].items() if n in present}
        return dict(court, bars=dict(court["bars"]))        # (the snapshot's own copy)

    def _see(self, messages, sender):
        """Pong's messages move the court: the textbook's shapes and this
        project's (bar_pos [x, y, ...]; ball_pos {"center": [x, y], ...} or
        [x, y]; score "b1"/"b2" or [b1, b2]; game_start: 0-0)."""
        court = self.court
        for title, content, _ in messages:
            if title == "ball_pos":
                if isinstance(content, dict):
                    point = _point(content.get("center") or content.get("pos"))
                    if _point(content.get("score")) is not None:
                        court["score"] = [int(v) for v in content["score"][:2]]
                else:
                    point = _point(content)
                if point is not None:
                    court["ball"], court["pong"] = point, True
            elif title == "bar_pos":
                point = _point(content)
                if point is not None:
                    court["bars"][sender] = point
                    court["pong"] = True
            elif title == "score":
                if content in ("b1", "b2"):
                    court["score"][int(content[1]) - 1] += 1
                elif _point(content) is not None:
                    court["score"] = [int(v) for v in content[:2]]
            elif title == "game_start":
                court["score"] = [0, 0]


def _last_data(run):
    """(dest, sender, messages) of the last frame of a forwarded DATA run."""
    offset = start = 0
    while len(run) - offset >= HEADER_SIZE:         # (a run is usually one frame)
        start = offset
        offset += max(_HEADER.unpack_from(run, offset)[0], HEADER_SIZE)
    length, _, dest, sender, _, _ = _HEADER.unpack_from(run, start)
    return dest, sender, _messages_in(run[start + HEADER_SIZE:start + length])


def _messages_in(payload):
    """The messages of a DATA payload; none if it is not a list of messages."""
    try:
        return parse_messages(payload)
    except ProtocolError:
        return []


def _point(value):
    """[x, y] from a list that starts with two numbers, else None."""
    if type(value) is list and len(value) >= 2:
        x, y = value[0], value[1]
        if type(x) in _NUMBERS and type(y) in _NUMBERS:
            return [x, y]
    return None


_NUMBERS = (int, float)         # (not bool: type(True) is bool)


def _one_line(text, most):
    """A teacher's text on one line, without control characters, at most ``most`` long."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text or "")).split())
    return text[:most]


class _Connection:
    """One connection: what the core knows about it (its state and name,
    timers, quota buckets), and what the driver needs (its socket and the
    bytes waiting for it)."""

    __slots__ = ("state", "where", "host", "reader", "name", "group", "members", "watchers",
                 "addr", "opened_at", "last_heard", "last_sent", "closing_since",
                 "partial_size", "partial_since", "room", "byte_tokens", "frame_tokens",
                 "refilled_at", "warned_at", "paused_until", "status_answers", "summary_frames",
                 "bytes_in", "tap", "board_mark",
                 "sock", "pending", "pending_size", "watched", "reading", "shut_when_sent")

    def __init__(self, address, reader, now, byte_tokens, frame_tokens):
        self.state = JOINING
        self.where = _format_address(address)
        self.host = self.where.rsplit(":", 1)[0]
        self.reader = reader
        self.name = None
        self.group = None
        self.members = None          # the group's {addr: connection}, once it has joined
        self.watchers = None         # the group's observers (a list), once it has joined
        self.status_answers = 0      # status requests answered
        self.summary_frames = 0      # frames it had sent at the last summary
        self.bytes_in = 0            # bytes received from it
        self.tap = None              # its group's _Tap while a board page watches the group
        self.board_mark = (0, 0, now)   # (frames, bytes, when) at the board's last look
        self.addr = UNKNOWN_ADDR
        self.opened_at = self.last_heard = self.last_sent = self.refilled_at = now
        self.closing_since = None
        self.partial_size = 0        # bytes of an unfinished frame held for it (or kept: room)
        self.room = 0                # room kept for its unfinished frame, its full length
        self.partial_since = None    # when that frame started arriving
        self.byte_tokens = byte_tokens
        self.frame_tokens = frame_tokens
        self.warned_at = None        # when it was warned for being over its quota (once)
        self.paused_until = None     # over its quota: not read until then
        self.sock = None             # the driver's
        self.pending = collections.deque()   # bytes objects (or views) waiting to be sent
        self.pending_size = 0
        self.watched = 0             # the selector events it is registered for
        self.reading = True          # False while the core has paused it
        self.shut_when_sent = False

    def __str__(self):
        return "{} ({})".format(self.name, self.where) if self.name else self.where


def _echo(text):
    """A client's string, quoted, on one line and at most SHORT_ECHO characters."""
    if len(text) <= SHORT_ECHO:
        return repr(text)
    return repr(text[:SHORT_ECHO]) + "... ({} characters)".format(len(text))


def _listing(items, most):
    if len(items) <= most:
        return ", ".join(items)
    return "{} ... and {} more".format(", ".join(items[:most]), len(items) - most)


def _receive_buffer():
    # One buffer, reused by every read. recv() would allocate _RECV_SIZE
    # bytes per call, and the C library may map and unmap that much memory
    # each time: three system calls more per frame.
    return memoryview(bytearray(_RECV_SIZE))


# Bytes read in one loop turn, from every connection together: past it, the
# rest wait for the next turn (at once: their sockets stay ready). Members
# pushing megabytes then cost each turn a millisecond at most, and a game's
# small frame never waits behind them for longer.
_TURN_READ_BUDGET = 1024 * 1024
_LISTEN_BACKLOG = 1024          # a class logging in at once is not turned away by the kernel
_ACCEPT_PAUSE = 0.5             # s without accepting after the system ran out of sockets
_WINDOWS_SELECT_LIMIT = 500     # select() on Windows watches at most 512 sockets
# Buffers the relay hands to one sendmsg() call (0: no sendmsg, as on Windows:
# one buffer per send()).
_SEND_MANY = 64 if hasattr(socket.socket, "sendmsg") else 0


def _listen(host, port):
    """Open the listening socket: all interfaces, IPv6 too where possible."""
    try:
        if host:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            return socket.create_server((host, port), family=family, backlog=_LISTEN_BACKLOG)
        if socket.has_dualstack_ipv6():
            try:
                return socket.create_server(("", port), family=socket.AF_INET6,
                                            backlog=_LISTEN_BACKLOG, dualstack_ipv6=True)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise
        return socket.create_server(("", port), backlog=_LISTEN_BACKLOG)
    except socket.gaierror:
        raise RelayError('cannot listen on "{}": no such address on this computer'.format(host))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise RelayError("port {} is already in use. Is a relay already running? Stop it, "
                             "or choose another port with -p.".format(port))
        raise RelayError("cannot listen on port {}: {}".format(port, exc.strerror or exc))


def _open_discovery_socket(host, port):
    """The UDP socket that answers discovery queries, on the relay's port
    number; None (and a warning) if it cannot be had: the relay works without."""
    try:
        if host:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        else:
            family, address = socket.AF_INET, ("", port)    # broadcasts are IPv4
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        log.warning("--find will not see this relay: UDP port %s is not free (%s)",
                    port, exc.strerror or exc)
        return None
    sock.setblocking(False)
    return sock


def _fit_to_open_file_limit(wanted):
    """Keep the connection cap below what the OS lets this process open."""
    if SELECTOR is selectors.SelectSelector:
        # Windows' selector (and any, forced to select()): no open-file limit
        # counts there, but select() fails with more than 512 sockets on
        # Windows, the listener and a refused few included.
        return min(wanted, _WINDOWS_SELECT_LIMIT - 40)
    try:
        import resource
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted + 32:
        try:
            new = wanted + 32 if hard == resource.RLIM_INFINITY else min(hard, wanted + 32)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else min(wanted, soft - 32)


def _format_address(address):
    host, port = address[0], address[1]
    if host.startswith("::ffff:"):
        host = host[7:]             # an IPv4 client on a dual-stack socket
    return "[{}]:{}".format(host, port) if ":" in host else "{}:{}".format(host, port)


# Names the relay hands to nodes that ask for one (replace them with -n FILE).
_ANIMALS = (
    "Aardvark Albatross Alpaca Badger Beetle Bison Capybara Caracal Chameleon "
    "Cormorant Coyote Dormouse Egret Falcon Flamingo Gazelle Gibbon Heron Ibis "
    "Jackal Jaguar Kestrel Kingfisher Koala Lemur Lynx Magpie Marmot Meerkat "
    "Mongoose Narwhal Newt Ocelot Okapi Orca Osprey Pangolin Pelican Penguin "
    "Platypus Puffin Quail Quokka Raccoon Salamander Sloth Starling Stoat "
    "Tapir Toucan Vole Walrus Wombat Yak Zebra"
).split()


# ---------------------------------------------------------------------------
# Tools for a classroom: find a relay, check one, watch a group
# ---------------------------------------------------------------------------

def find_relays(address=None, port=DEFAULT_PORT, timeout=1.0, name=None):
    """Ask for relays over UDP; return what answered, as a list of dicts.

    Each dict has ``address`` (who answered), ``port`` (its TCP port),
    ``name`` (the relay's name, None for an older relay), ``version``,
    ``players`` (how many in all), ``groups`` (``{name: players}``, or None
    for a relay started with ``--private``) and, for an open relay
    (``--any-group``), ``any_group``. With no ``address`` the question goes
    to the local network's broadcast addresses and every answer within
    ``timeout`` seconds counts; with one, the first answer from it is
    enough; with ``name``, the first relay of that name (in any case) is.
    Raises OSError (socket.gaierror for a name that does not resolve) if
    the question cannot be sent at all.
    """
    with RelayFinder(address, port) as finder:
        deadline = time.monotonic() + timeout
        while True:
            if address and finder.found or name and finder.named(name):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not finder.wait(remaining):
                break
            finder.poll()
        relays = finder.named(name) if name else finder.found
    return sorted(relays, key=lambda info: (info["address"], info["port"]))


class RelayFinder:
    """Asks the local network (or ``address``) for relays without waiting,
    for a game that keeps drawing meanwhile: ``ask()`` sends the question
    (again), ``poll()`` reads the answers that came and returns the relays
    heard of for the first time; ``found`` lists every relay heard of, the
    latest answer of each (dicts as find_relays() gives them). Raises
    OSError if the question cannot be sent at all."""

    def __init__(self, address=None, port=DEFAULT_PORT):
        if address:
            family, _, _, _, target = _udp_address(address, port)
            self._targets = [target]
        else:
            family, self._targets = socket.AF_INET, [(b, port) for b in _broadcast_addresses()]
        self._address = address
        self._answers = {}          # (address, port) -> info
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if not address:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            self._sock.setblocking(False)
            self.ask()
        except OSError:
            self._sock.close()
            raise

    @property
    def found(self):
        return list(self._answers.values())

    def named(self, name):
        """The relays called ``name`` (in any case)."""
        wanted = name.casefold()
        return [info for info in self._answers.values()
                if info["name"] and info["name"].casefold() == wanted]

    def ask(self):
        query, sent, problem = discovery_query(), 0, None
        for target in self._targets:
            try:
                self._sock.sendto(query, target)
                sent += 1
            except OSError as exc:
                problem = exc       # e.g. no route for the all-ones address
        if not sent:
            raise problem

    def wait(self, seconds):
        """Sleep until an answer is there to read (True) or ``seconds`` pass."""
        return bool(select.select([self._sock], [], [], max(0.0, seconds))[0])

    def gather(self, seconds):
        """Read the answers that come within ``seconds``; returns ``found``."""
        deadline = time.monotonic() + seconds
        while self.wait(deadline - time.monotonic()):
            self.poll()
        return self.found

    def poll(self):
        new = []
        while True:
            try:
                data, source = self._sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return new
            except OSError:         # an ICMP "port unreachable" on some systems
                continue
            info = parse_discovery_answer(data)
            if info is None:
                continue
            info["address"] = _format_address(source).rsplit(":", 1)[0].strip("[]")
            info.setdefault("groups", None)
            key = (info["address"], info["port"])
            if key not in self._answers:
                new.append(info)
            self._answers[key] = info

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def relay_named(name, port=DEFAULT_PORT, timeout=1.0):
    """(address, port) of the relay on the local network called ``name`` (in
    any case), or None if none answers within ``timeout`` seconds."""
    try:
        relays = find_relays(None, port, timeout, name=name)
    except OSError:
        return None
    return (relays[0]["address"], relays[0]["port"]) if relays else None


class CheckResult:
    """What ``check_relay`` found. ``ok`` is True for a relay games can join.

    ``code`` is one of RELAY_OK ("ok"), OLD_RELAY (a relay that does not
    answer status requests, such as the original one: games can still join
    it), BAD_ADDRESS, NO_RELAY (connection refused), TIMEOUT (no answer:
    likely a firewall), UNREACHABLE or NOT_A_RELAY. ``message`` says it in
    plain words (several lines for some), ``status`` is the relay's status
    dict (RELAY_OK only), ``round_trips`` the seconds each status request
    took, and ``round_trip`` their median (None without any).
    """

    def __init__(self, code, host, port, message, status=None, round_trips=()):
        self.code = code
        self.host = host
        self.port = port
        self.message = message
        self.status = status
        self.round_trips = list(round_trips)
        self.round_trip = _median(self.round_trips) if self.round_trips else None

    @property
    def ok(self):
        return self.code in (RELAY_OK, OLD_RELAY)

    def __repr__(self):
        return "<CheckResult {} {}:{}>".format(self.code, self.host, self.port)


def check_relay(host, port=DEFAULT_PORT, timeout=3.0, samples=20):
    """Connect to ``host`` as a probe and find out what is there (CheckResult).

    It asks for the relay's status (REQ 2) ``samples`` times and times each
    answer. Something that sends bytes that are not protocol 020 is not a
    relay; one that stays silent is asked to join a group no relay has: an
    original relay then closes the connection. ``timeout`` bounds each wait.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        found = relay_named(host, port) if not relay_name_problem(host) else None
        if found is None:
            return CheckResult(BAD_ADDRESS, host, port, _advice(
                BAD_ADDRESS, host, port, timeout, getattr(exc, "strerror", None) or exc))
        addresses = [(socket.AF_INET, socket.SOCK_STREAM, 0, "", found)]   # a relay's name
    failure, detail = NO_RELAY, None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except socket.timeout:
                failure = TIMEOUT
                continue
            except OSError as exc:
                if exc.errno not in _CONNECT_REFUSED:
                    failure, detail = UNREACHABLE, exc.strerror or exc
                continue
            try:
                return _probe(sock, host, port, timeout, samples)
            except OSError as exc:      # reset while we talked
                return CheckResult(NOT_A_RELAY, host, port, (
                    "Something at {} accepted the connection and then broke it off ({}): "
                    "it does not behave like a nethelper relay.").format(
                        _where(host, port), exc.strerror or exc))
        finally:
            sock.close()
    return CheckResult(failure, host, port, _advice(failure, host, port, timeout, detail))


def _probe(sock, host, port, timeout, samples):
    """Ask a connected socket for the relay's status; see check_relay."""
    where = _where(host, port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    core = NodeCore(NetNode)
    core.opened(time.monotonic(), where)
    round_trips, status = [], None
    for _ in range(max(1, samples)):
        started = time.monotonic()
        core.ask_status()
        event, seen = _await_event(sock, core, timeout)
        if type(event) is Status:
            round_trips.append(time.monotonic() - started)
            status = event.info
            continue
        if type(event) is Ended and event.by_relay:
            # This relay turns every newcomer away for now (it is full).
            return CheckResult(event.code, host, port, "The relay at {} turned the check "
                               "away: {}".format(where, _shorten(event.text, 200)))
        break
    if status is not None:
        return CheckResult(RELAY_OK, host, port, _describe_relay(where, status, round_trips),
                           status, round_trips)
    if event is None:
        # An original relay ignores the request; asked to join a group it
        # does not have, it closes the connection.
        core.name, core.group = "check", "nethelper-check-no-such-group"
        core.join()
        event, seen = _await_event(sock, core, timeout)
        if event is None:
            return CheckResult(NOT_A_RELAY, host, port, (
                "Something at {} accepted the connection but never answered: it is not a "
                "nethelper relay. Check the port number, or start the relay on another "
                "port with -p.").format(where))
        if not (type(event) is Ended and not event.by_relay and (event.code == PROTOCOL or seen)):
            event = Other(None)         # a relay's answer: a refusal, or closing at once
    if type(event) is not Ended:
        return CheckResult(OLD_RELAY, host, port, (
            "A nethelper relay answers at {}, but it does not answer status requests (an "
            "original nethelper relay?). Games can join it; --watch and the group list need "
            "this project's relay.").format(where))
    if not seen:
        return CheckResult(NOT_A_RELAY, host, port, (
            "Something at {} closed the connection without a word: it does not behave like a "
            "nethelper relay. Check the port number.").format(where))
    return CheckResult(NOT_A_RELAY, host, port, (
        "Something at {} answered, but it is not a nethelper relay{}: it sent {}. Check the "
        "port number, or start the relay on another port with -p.").format(
            where, " (it looks like a web server)" if seen.startswith(b"HTTP/") else "",
            _shorten(repr(bytes(seen[:40])), 60)))


def _await_event(sock, core, timeout):
    """Send what the core has to say, then read until it has an event:
    (event, the first bytes seen meanwhile). The event is None when nothing
    came within ``timeout``; the end of the connection is an Ended event."""
    sock.sendall(core.outgoing)
    core.sent(len(core.outgoing), time.monotonic())
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        event = core.next_event()
        if event is not None:
            return event, bytes(seen)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, bytes(seen)
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return None, bytes(seen)
        except OSError as exc:
            core.broken(exc.strerror or str(exc))
            continue
        seen += data[:64 - len(seen)] if len(seen) < 64 else b""
        core.receive(data, time.monotonic())


def _describe_relay(where, status, round_trips):
    groups = status.get("groups")
    name = status.get("name")
    lines = ["A nethelper relay{} (version {}, protocol {}) answers at {}.".format(
        ' called "{}"'.format(name) if isinstance(name, str) else "",
        status.get("version", "?"), status.get("protocol", "020"), where)]
    if isinstance(groups, dict):
        listed = ", ".join("{} ({})".format(g, _players(n)) for g, n in groups.items())
        if status.get("more_groups"):
            listed += " and {} more".format(status["more_groups"])
        if status.get("any_group"):
            listed = (listed + "; " if listed else "") + "open: any group a game asks for"
        lines.append("  Groups: " + (listed or "none"))
    else:
        lines.append("  Groups: not listed (the relay is private); {} in all".format(
            _players(status.get("players", 0))))
    ms = sorted(1000 * t for t in round_trips)
    lines.append("  Round trip: {:.1f} ms (median of {}; {:.1f} to {:.1f} ms)".format(
        _median(ms), len(ms), ms[0], ms[-1]))
    return "\n".join(lines)


def _median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _players(count):
    return "{} player{}".format(count, "" if count == 1 else "s")


def _where(host, port):
    return "{} port {}".format(host, port)


def _port_option(port):
    return "" if port == DEFAULT_PORT else " -p {}".format(port)


def _advice(code, host, port, timeout, detail=None):
    """What to do when no relay answered, in plain words."""
    where = _where(host, port)
    if code == BAD_ADDRESS:
        return ('The name "{}" could not be found ({}){}. Check its spelling, or type the '
                "relay computer's IP address instead (the relay prints it when it starts, e.g. "
                "192.168.0.10).".format(host, detail, "" if relay_name_problem(host) else
                                        ", and no relay of that name answered on the local "
                                        "network (python nethelper.py --find lists them)"))
    if code == NO_RELAY:
        return ("Nothing is listening at {} (the connection was refused). Start the relay on "
                "that computer (python nethelper.py -g pong_game{}), or check the address and "
                "the port.".format(where, _port_option(port)))
    if code == UNREACHABLE:
        return ("Cannot reach {} ({}). Check that this computer is on the same network as the "
                "relay's, and the address.".format(where, detail))
    return ("{} did not answer within {:g} s. Check the address; if it is right, a firewall on "
            "the relay's computer most likely blocks port {}.\n{}".format(
                where, timeout, port, firewall_advice(port)))


def firewall_advice(port=DEFAULT_PORT):
    """The firewall rules to add on the relay's computer, one line per system."""
    return (
        "  Allow TCP port {p} (and UDP port {p}, for --find) on the relay's computer:\n"
        "  Windows (PowerShell as administrator): New-NetFirewallRule -DisplayName nethelper "
        "-Direction Inbound -Protocol TCP -LocalPort {p} -Action Allow; New-NetFirewallRule "
        "-DisplayName nethelper-find -Direction Inbound -Protocol UDP -LocalPort {p} -Action "
        "Allow\n"
        "  macOS: System Settings > Network > Firewall > Options: allow incoming connections "
        "for Python\n"
        "  Linux: sudo ufw allow {p}/tcp && sudo ufw allow {p}/udp   (firewalld: sudo "
        "firewall-cmd --add-port={p}/tcp --add-port={p}/udp)".format(p=port))


def _shorten(text, most):
    return text if len(text) <= most else text[:most - 3] + "..."


def _udp_address(address, port):
    """getaddrinfo for UDP, IPv4 first (broadcast and most LANs are IPv4)."""
    try:
        return socket.getaddrinfo(address, port, socket.AF_INET, socket.SOCK_DGRAM)[0]
    except socket.gaierror:
        return socket.getaddrinfo(address, port, type=socket.SOCK_DGRAM)[0]


def _broadcast_addresses():
    """Where a LAN-wide question goes: every interface's broadcast address
    (Linux) and the all-ones one, which every system sends on its main LAN."""
    found = ["255.255.255.255"]
    try:
        import fcntl
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with probe:
            for _, name in socket.if_nameindex():
                try:
                    request = struct.pack("256s", name.encode()[:15])
                    reply = fcntl.ioctl(probe.fileno(), 0x8919, request)   # SIOCGIFBRDADDR
                    address = socket.inet_ntoa(reply[20:24])
                except OSError:
                    continue
                if address not in found and not address.startswith(("127.", "0.")):
                    found.append(address)
    except (ImportError, OSError, AttributeError):
        pass
    return found


class _Watcher:
    """--watch: an observer's connection, printing what the group sends."""

    def __init__(self, group, out, every, show_all):
        self.group = group
        self.out = out
        self.every = every
        self.show_all = show_all
        self.core = NodeCore(NetNode)
        self.counts = collections.Counter()     # title -> messages since the last rates line
        self.last_shown = {}        # (sender, dest, title) -> when last printed

    def run(self, sock):
        """Watch until the relay closes or Ctrl+C; returns the exit status."""
        core = self.core
        now = time.monotonic()
        core.opened(now, _format_address(sock.getpeername()))
        core.watch("watcher", self.group)
        next_rates, rates_since = now + self.every, now
        selector = _new_selector()
        selector.register(sock, selectors.EVENT_READ)
        try:
            while True:
                sock.sendall(core.outgoing)
                core.sent(len(core.outgoing), time.monotonic())
                if selector.select(0.2):
                    core.receive(sock.recv(_RECV_SIZE), time.monotonic())
                events = []
                while True:
                    event = core.next_event()
                    if event is None:
                        break
                    events.append(event)
                now = time.monotonic()
                for event in events + core.tick(now):
                    status = self._show(event, now)
                    if status is not None:
                        return status
                if now >= next_rates:
                    self._show_rates(now - rates_since)
                    next_rates, rates_since = now + self.every, now
        except KeyboardInterrupt:
            core.leave()
            sock.sendall(core.outgoing)
            return 0
        except OSError as exc:
            self.out("The connection to the relay broke ({}).".format(exc.strerror or exc))
            return 1
        finally:
            selector.close()

    def _show(self, event, now):
        """Print one event; an exit status when watching is over, else None."""
        kind = type(event)
        if kind is Players:
            self.out("Players in {}: {}".format(self.group, ", ".join(event.names) or "none yet"))
        elif kind is Ended:
            if event.by_relay:
                self.out("The relay said: {}".format(event.text))
            elif event.code == PROTOCOL:
                self.out("The connection to the relay broke ({}).".format(event.text))
            else:
                self.out("The relay closed the connection.")
            return 1
        elif kind is Received:
            names = self.core.names
            sender = names.get(event.sender, "address {}".format(event.sender))
            dest = "everyone" if event.dest == ALL_ADDR else names.get(
                event.dest, "address {}".format(event.dest))
            if event.messages is None:
                # The relay passes a game's bytes on unread: a buggy game's
                # broken DATA is worth a line, not the end of watching.
                self.out("{} {} -> {}: (not a list of messages)".format(
                    time.strftime("%H:%M:%S"), sender, dest))
                return None
            for title, content, _ in event.messages:
                self.counts[title] += 1
                key = (sender, dest, title)
                if self.show_all or now - self.last_shown.get(key, -1.0) >= 0.5:
                    self.last_shown[key] = now
                    self.out("{} {} -> {}: {} {}".format(
                        time.strftime("%H:%M:%S"), sender, dest, title,
                        _shorten(json.dumps(content, ensure_ascii=False), 60)))
        return None

    def _show_rates(self, seconds):
        if self.counts:
            self.out("  rates: " + ", ".join("{} {:.1f}/s".format(title, count / seconds)
                                             for title, count in self.counts.most_common()))
            self.counts.clear()


# ---------------------------------------------------------------------------
# The teacher's board: a web page of the relay (--board)
# ---------------------------------------------------------------------------
#
# An http.server in a thread of its own serves one page and a JSON state.
# The relay's state stays the relay loop's: while a page polls, the loop
# takes a snapshot (RelayCore.board_state) every BOARD_REFRESH seconds and
# hands it over under a lock; the page's commands (kick, lock, message) go
# the other way, as jobs the loop runs as core events. With no page open
# the loop does nothing for the board but test two attributes per turn.

BOARD_KEY_BYTES = 16            # the key: 128 random bits (secrets), URL-safe text
BOARD_REFRESH = 0.5             # s between snapshots while a page polls, ...
BOARD_FAST_COURTS = 4           # ... and a page watches at most this many games (else 1 s)
BOARD_POLLS_COUNT = 3.0         # s after the last poll that a page counts as open
BOARD_WATCH_FOR = 3.0           # s a group stays watched after a page last asked for it
BOARD_CLIENTS = 32              # requests served at once; more are closed at once
BOARD_REQUEST_RATE = 10.0       # requests a second from one address (a page asks once), ...
BOARD_REQUEST_BURST = 30        # ... with bursts of this many; more get a bare 429, unread
BOARD_BODY_LIMIT = 4096         # bytes of a command's JSON body
BOARD_WRONG_KEYS = 10           # wrong keys an address may try at once, ...
BOARD_WRONG_KEY_RATE = 1 / 6.0  # ... then one more every 6 s
BOARD_LOG_EVERY = 10.0          # s between log lines about one address's wrong keys
_TCP_INFO = getattr(socket, "TCP_INFO", None)      # Linux: the kernel's round trip estimate


class Board:
    """The teacher's board: a web page showing every group of ``relay``,
    its players and their traffic, recent events and, for the groups the
    page watches, their latest messages and Pong court; with the key, it
    kicks a player, locks a group or sends a group a message.

    ``port`` None serves on the relay's port + 1; ``host`` None on every
    interface (as the relay). Every request needs ``key`` (random when
    None): the address to open is ``url(host)``. Create it before the
    relay's loop runs, then ``start()``; the relay's shutdown closes it.
    """

    def __init__(self, relay, host=None, port=None, key=None):
        self.relay = relay
        self.host = host
        self.port = port
        self.key = key or secrets.token_urlsafe(BOARD_KEY_BYTES)
        self._key_bytes = self.key.encode("utf-8")
        self._server = None
        self._thread = None
        # The relay loop never waits for a web thread: it publishes a
        # snapshot by one assignment and takes the watched groups only if
        # their lock is free at once (else it keeps the last ones).
        self._lock = threading.Lock()            # _polled_at and _watched
        self._fresh = threading.Condition()      # a web thread waiting for a first snapshot
        self._wrong_lock = threading.Lock()      # _wrong
        self._jobs = collections.deque()         # commands for the relay loop
        self._polled_at = float("-inf")          # when a page last asked (monotonic)
        self._watched = {}                       # group -> (until (monotonic), messages too)
        self._published = (float("-inf"), None)  # (when, snapshot dict): the latest
        self._encoded = (None, None)             # (that dict, its JSON), made on request
        self._last_watched = (set(), set())      # relay loop: the groups watched last time
        self._next_look = 0.0                    # relay loop: when the next snapshot is due
        self._tapping = False                    # relay loop: some group's tap is on
        self._fresh_wanted = 0                   # web threads waiting for a snapshot
        self._wrong = {}                         # host -> (tries left, when, logged at, quiet)
        relay.board = self

    def start(self):
        """Bind and serve in a daemon thread. RelayError if the port is taken."""
        port = self.relay.port + 1 if self.port is None else self.port
        if not 0 <= port <= 65535:
            raise RelayError("the board's port {} is not a port number; choose one with "
                             "--board-port".format(port))
        try:
            self._server = _board_server_class()((self.host or "", port), self)
        except OSError as exc:
            raise RelayError("the board cannot use port {}: {} (choose another with "
                             "--board-port)".format(port, exc.strerror or exc)) from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="nethelper-board", daemon=True)
        self._thread.start()
        return self

    def url(self, host="localhost"):
        """The page's address, with its key."""
        if ":" in host:
            host = "[{}]".format(host)
        return "http://{}:{}/?key={}".format(host, self.port, self.key)

    def close(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- the relay loop's side --------------------------------------------------

    def due(self, now):
        """True when the loop has work for the board: a command, or a snapshot
        while a page polls (or to stop watching once none does)."""
        if self._jobs:
            return True
        if now < self._next_look:
            return False
        return now - self._polled_at < BOARD_POLLS_COUNT or self._tapping

    def serve_relay(self, relay, now):
        """Run the page's commands as core events, then take a snapshot if one is due."""
        core = relay.core
        ran = False
        while self._jobs:
            job = self._jobs.popleft()
            job.answer(job.run(core, now))
            ran = True
        if now < self._next_look and not ran:
            return
        if self._lock.acquire(blocking=False):
            try:
                polling = now - self._polled_at < BOARD_POLLS_COUNT
                for group, (until, _) in list(self._watched.items()):
                    if until <= now or not polling:
                        del self._watched[group]
                watched = {g for g, (_, messages) in self._watched.items() if messages}
                courts = set(self._watched) - watched
            finally:
                self._lock.release()
            self._last_watched = watched, courts
        watched, courts = self._last_watched
        self._next_look = now + self.refresh(len(watched) + len(courts))
        state = core.board_state(now, watched, courts, _round_trip_ms)
        self._tapping = bool(watched or courts)
        state.update(uptime_s=round(now - relay.started_at), port=relay.port,
                     version=__version__, watched=sorted(watched), courts=sorted(courts))
        self._published = (now, state)
        if self._fresh_wanted:
            with self._fresh:
                self._fresh.notify_all()

    @staticmethod
    def refresh(games):
        """Seconds between snapshots while a page watches ``games`` games:
        a live court is read twice a second for a few games, once for many."""
        return BOARD_REFRESH if games <= BOARD_FAST_COURTS else 2 * BOARD_REFRESH

    # -- the web server's side (its threads) ------------------------------------

    def refuse(self, host, key):
        """None when ``key`` is the board's; else (HTTP status, sentence).
        Wrong keys are counted per address, logged, and over the limit
        every request from that address is turned away for a while."""
        now = time.monotonic()
        with self._wrong_lock:
            left, since, logged_at, quiet = self._wrong.get(host, (BOARD_WRONG_KEYS, now,
                                                                  float("-inf"), 0))
            left = min(BOARD_WRONG_KEYS, left + (now - since) * BOARD_WRONG_KEY_RATE)
            if left < 1:
                self._wrong[host] = (left, now, logged_at, quiet + 1)
                return 429, "Too many wrong keys from this address: wait a minute, then " \
                            "open the address the relay printed."
        if key and hmac.compare_digest(key.encode("utf-8", "replace"), self._key_bytes):
            return None
        with self._wrong_lock:
            if len(self._wrong) > 4096:              # a flood from forged addresses
                self._wrong.clear()
            quiet += 1
            if now - logged_at >= BOARD_LOG_EVERY:
                log.warning("board: %s from %s%s", "a wrong key" if key else "no key", host,
                            " ({} tries in all since the last line)".format(quiet)
                            if quiet > 1 else "")
                logged_at, quiet = now, 0
            self._wrong[host] = (left - 1, now, logged_at, quiet)
        return 403, "This board needs its key: open the address the relay printed " \
                    "(Board: http://...?key=...)."

    def state_json(self, watch, courts=()):
        """The latest snapshot as JSON bytes; notes that a page polls, which
        groups it watches (court and messages) and whose courts it shows.
        Waits (up to a second) only when there is no fresh snapshot."""
        now = time.monotonic()
        wake = False
        groups = self.relay.core.groups
        with self._lock:
            wake = now - self._polled_at >= BOARD_POLLS_COUNT
            self._polled_at = now
            for messages, asked in ((False, courts), (True, watch)):
                for group in asked[:len(groups)]:
                    if group in groups:
                        wake = wake or group not in self._watched
                        self._watched[group] = (now + BOARD_WATCH_FOR, messages)
        if wake:
            self._wake_relay()
        if now - self._published[0] > 2 * BOARD_REFRESH + 0.5:
            with self._fresh:
                self._fresh_wanted += 1
                self._fresh.wait_for(lambda: self._published[0] >= now, timeout=1.0)
                self._fresh_wanted -= 1
        state = self._published[1]
        if state is None:
            return None
        shown, encoded = self._encoded
        if shown is not state:          # (two threads may both encode it: no harm)
            encoded = json.dumps(state, ensure_ascii=False).encode("utf-8")
            self._encoded = (state, encoded)
        return encoded

    def command(self, action, request):
        """Run a command from the page in the relay loop: (HTTP status, answer)."""
        job = _BoardJob(action, request)
        if job.problem:
            return 400, {"ok": False, "error": job.problem}
        self._jobs.append(job)
        self._wake_relay()
        if not job.done.wait(2.0):
            return 503, {"ok": False, "error": "The relay did not answer in time."}
        return (200 if job.result["ok"] else 404), job.result

    def _wake_relay(self):
        wake = self.relay._wake_send
        if wake is not None:
            try:
                wake.send(b"b")
            except OSError:
                pass


class _BoardJob:
    """One command from the page: checked in the web thread, run in the relay loop."""

    def __init__(self, action, request):
        self.action = action
        self.problem = None
        self.result = None
        self.done = threading.Event()
        self.group = request.get("group") if isinstance(request, dict) else None
        self.name = request.get("name") if isinstance(request, dict) else None
        self.text = request.get("text") if isinstance(request, dict) else None
        self.locked = request.get("locked", True) if isinstance(request, dict) else None
        if not isinstance(self.group, str):
            self.problem = "Say which group (a JSON object with \"group\")."
        elif action == "kick" and not isinstance(self.name, str):
            self.problem = "Say which player to kick (\"name\")."
        elif action in ("kick", "message") and not isinstance(self.text or "", str):
            self.problem = "The text must be a string."
        elif action == "message" and not _one_line(self.text, MESSAGE_LENGTH):
            self.problem = "The message is empty."
        elif action == "lock" and not isinstance(self.locked, bool):
            self.problem = "\"locked\" must be true or false."

    def run(self, core, now):
        if self.action == "kick":
            if core.kick(self.group, self.name, self.text, now):
                return {"ok": True}
            return {"ok": False, "error": "No player {} in group {}.".format(
                _echo(self.name), _echo(self.group))}
        if self.action == "lock":
            if core.lock(self.group, self.locked, now):
                return {"ok": True, "locked": self.locked}
        else:
            told = core.tell(self.group, self.text, now)
            if told is not None:
                return {"ok": True, "told": told}
        return {"ok": False, "error": "This relay has no group {}.".format(_echo(self.group))}

    def answer(self, result):
        self.result = result
        self.done.set()


def _round_trip_ms(conn):
    """The kernel's smoothed round trip of a connection in ms (Linux), else None."""
    if conn.sock is None or _TCP_INFO is None:
        return None
    try:
        info = conn.sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 104)
    except OSError:
        return None
    if len(info) < 72:
        return None
    return round(struct.unpack_from("I", info, 68)[0] / 1000, 1)   # tcpi_rtt, microseconds


def _board_server_class():
    """The board's web server class, made on first use: http.server (and the
    email package it brings) is imported only by a relay with --board, not
    by every game that imports nethelper."""
    global _BoardServer
    if _BoardServer is not None:
        return _BoardServer
    import http.server

    class _BoardServer(http.server.ThreadingHTTPServer):
        """One thread per connection, at most BOARD_CLIENTS at once. An address
        asking more than BOARD_REQUEST_RATE times a second is answered 429 by
        the accepting thread without a thread or a read: a storm of requests
        costs the relay's process little, and the relay's loop keeps its CPU."""

        daemon_threads = True
        block_on_close = False
        request_queue_size = 128

        def __init__(self, address, board):
            if ":" in address[0]:
                self.address_family = socket.AF_INET6
            self.board = board
            self._slots = threading.BoundedSemaphore(BOARD_CLIENTS)
            self._asked = {}                # host -> (requests left, when counted)
            super().__init__(address, _BoardHandler)

        def verify_request(self, request, client_address):
            """Per-address token bucket (only the accepting thread runs this)."""
            now = time.monotonic()
            if len(self._asked) > 4096:
                self._asked.clear()
            left, since = self._asked.get(client_address[0], (BOARD_REQUEST_BURST, now))
            left = min(BOARD_REQUEST_BURST, left + (now - since) * BOARD_REQUEST_RATE)
            if left >= 1:
                self._asked[client_address[0]] = (left - 1, now)
                return True
            self._asked[client_address[0]] = (left, now)     # (what is turned away is not charged)
            try:
                request.send(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            except OSError:
                pass
            return False

        def process_request(self, request, client_address):
            if not self._slots.acquire(blocking=False):
                self.shutdown_request(request)      # a storm: the relay matters more
                return
            try:
                super().process_request(request, client_address)
            except Exception:
                self._slots.release()
                raise

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                self._slots.release()


    class _BoardHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nethelper-board"
        sys_version = ""
        timeout = 10                # a client that stalls mid-request is dropped
        COMMANDS = ("kick", "lock", "message")

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if not self._key_ok(query):
                return
            board = self.server.board
            if url.path == "/":
                self._send(200, _BOARD_PAGE.encode("utf-8"), "text/html; charset=utf-8")
            elif url.path == "/state":
                watch, courts = (",".join(query.get(name, [])).split(",") for name in ("watch", "court"))
                state = board.state_json([g for g in watch if g], [g for g in courts if g])
                if state is None:
                    self._send_json(503, {"ok": False, "error": "The relay has not answered yet."})
                else:
                    self._send(200, state, "application/json")
            else:
                self._send_json(404, {"ok": False, "error": "Nothing here: open /?key=..."})

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            if not self._key_ok(urllib.parse.parse_qs(url.query)):
                return
            action = url.path.strip("/")
            if action not in self.COMMANDS:
                return self._send_json(404, {"ok": False, "error": "No such command."})
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= BOARD_BODY_LIMIT:
                self.close_connection = True
                return self._send_json(413, {"ok": False, "error": "The request is too big."})
            try:
                request = json.loads(self.rfile.read(length).decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return self._send_json(400, {"ok": False, "error": "The body is not JSON."})
            status, answer = self.server.board.command(action, request)
            self._send_json(status, answer)

        def _key_ok(self, query):
            key = self.headers.get("X-Board-Key") or (query.get("key") or [None])[0]
            refusal = self.server.board.refuse(self.client_address[0], key)
            if refusal is None:
                return True
            status, sentence = refusal
            self.close_connection = True    # (a body it did not read must not pass for a request)
            if self.command == "GET" and urllib.parse.urlsplit(self.path).path == "/":
                page = "<!doctype html><meta charset=utf-8><title>Relay board</title><p>{}</p>"
                self._send(status, page.format(sentence).encode("utf-8"), "text/html; charset=utf-8")
            else:
                self._send_json(status, {"ok": False, "error": sentence})
            return False

        def _send_json(self, status, value):
            self._send(status, json.dumps(value).encode("utf-8"), "application/json")

        def _send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Content-Type-Options", "nosniff")
            # Nothing from elsewhere: no CDN, no fonts, no scripts but the page's own.
            self.send_header("Content-Security-Policy", "default-src 'none'; script-src "
                             "'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                             "img-src data:")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass                    # a page polls every second: no line per request

    return _BoardServer


_BoardServer = None


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def main(argv=None):
    """Run the relay from the command line. Returns the exit status."""
    _make_console_safe()
    parser = argparse.ArgumentParser(
        prog="nethelper.py",
        description="Run a nethelper relay: games join a group and it passes "
                    "their messages to the others in that group. Or find, check or "
                    "watch a relay (--find, --check, --watch).",
        epilog="Examples: python nethelper.py -g pong1 pong2 pong3 | "
               "python nethelper.py --find | python nethelper.py --check 192.168.0.10 | "
               "python nethelper.py --watch pong1 192.168.0.10")
    for option in RELAY_OPTIONS:
        if option.flags:
            option.add_to(parser)
    tools = parser.add_mutually_exclusive_group()
    tools.add_argument("--find", nargs="?", const="", metavar="ADDRESS",
                       help="list the relays that answer on the local network (or at ADDRESS)")
    tools.add_argument("--check", metavar="HOST",
                       help="check whether a relay works at HOST, and what is wrong if not")
    tools.add_argument("--watch", nargs="+", metavar=("GROUP", "HOST"),
                       help="print what the games in GROUP send (relay at HOST, default "
                            "localhost)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="how long --find, --check and --watch wait for an answer "
                             "(default 1 for --find, 3 otherwise)")
    parser.add_argument("--every", type=float, default=5.0, metavar="SECONDS",
                        help="--watch prints message rates this often (default %(default)s)")
    parser.add_argument("--all", action="store_true",
                        help="--watch prints every message (default: each kind at most "
                             "twice a second)")
    args = parser.parse_args(argv)
    if args.quiet and args.verbose:
        parser.error("choose -q (quiet) or -v (verbose), not both")
    options = {o.name: getattr(args, o.name) for o in RELAY_OPTIONS
               if o.flags and o.scope != "command"}
    try:
        relay_settings("driver", options)       # checked before --find, --check or --watch too
    except ValueError as exc:
        print("Error:", exc, file=sys.stderr)
        return 1
    if args.watch is not None and len(args.watch) > 2:
        parser.error("--watch takes a group and at most one host")
    if args.timeout is not None and args.timeout <= 0 or args.every <= 0:
        parser.error("--timeout and --every must be above zero")
    if args.find is not None:
        return _find_command(args.find or None, args.port, args.timeout or 1.0)
    if args.check is not None:
        return _check_command(args.check, args.port, args.timeout or 3.0)
    if args.watch is not None:
        host = args.watch[1] if len(args.watch) > 1 else "localhost"
        return _watch_command(args.watch[0], host, args.port, args.timeout or 3.0,
                              args.every, args.all)

    if args.groups and "*" in args.groups:      # -g '*': an open relay
        options["any_group"] = True
        args.groups = [g for g in args.groups if g != "*"]
    chosen_for_you = not args.groups and not args.file and not options["any_group"]
    try:
        groups = list(args.groups or ())
        if chosen_for_you:
            groups = [DEFAULT_GROUP]
        if args.file:
            groups += _read_list(args.file, "groups file")
        names = _read_list(args.names, "names file") if args.names else None
        for name in names or ():
            if name_problem(name):
                raise RelayError("names file {}: cannot hand out {!r}. {}".format(
                    args.names, name, name_problem(name)))
        groups = list(dict.fromkeys(groups))    # drop repeats, keep order
        if args.quiet:
            options["summary_interval"] = float("inf")
        relay = Relay(groups, names=names, **options)
    except (RelayError, ValueError) as exc:
        print("Error:", exc, file=sys.stderr)
        return 1

    try:
        relay.start()           # bind first, so that the banner shows the real port
    except RelayError as exc:
        print("Error:", exc, file=sys.stderr)
        return 1
    if chosen_for_you:
        print("No groups given: serving group {}. To choose groups, name them: "
              "python nethelper.py -g name1 name2".format(DEFAULT_GROUP))
    print("Starting Server")
    print("  Interface:", args.host or "ALL")
    print("  Port:     ", relay.port)
    print("  Name:     ", relay.core.name)
    print("  Groups:   ", ", ".join(groups + (["any a game asks for"] if relay.core.any_group
                                              else [])))
    if names:
        print("  Names:     {} from {}".format(len(names), args.names))
    if relay.board is not None:
        where = args.host or (_lan_addresses() or ["localhost"])[0]
        print("  Board:     {}  (the teacher's page; keep its key to yourself)".format(
            relay.board.url(where)))
    print("Server listening", flush=True)
    if not args.host:
        _print_lan_addresses(relay.core.name)

    logging.basicConfig(stream=sys.stdout, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        level=logging.WARNING if args.quiet else
                        logging.DEBUG if args.verbose else logging.INFO)
    _stop_on_sigterm()
    try:
        relay.serve_forever()
    except KeyboardInterrupt:
        pass
    print("Server stopped. Goodbye!", flush=True)
    return 0


def _find_command(address, port, timeout):
    where = address or "the local network"
    try:
        relays = find_relays(address, port, timeout)
    except socket.gaierror as exc:
        print(_advice(BAD_ADDRESS, address, port, timeout, exc.strerror or exc))
        return 1
    except OSError as exc:
        print("Could not ask {} for relays: {}.".format(where, exc.strerror or exc))
        return 1
    if not relays:
        print("No relay answered on {} (UDP port {}) within {:g} s. Is the relay running? "
              "If it is, its computer's firewall may block UDP port {}; try "
              "python nethelper.py --check ADDRESS{}.".format(
                  where, port, timeout, port, _port_option(port)))
        return 1
    for info in relays:
        groups = info["groups"]
        if groups is None:
            listing = "groups not listed (private)"
        else:
            listing = ", ".join("{} ({})".format(g, n) for g, n in groups.items()) or "no groups"
            if info.get("more_groups"):
                listing += " and {} more".format(info["more_groups"])
        if info.get("any_group"):
            listing += "; open: any group a game asks for"
        print("{}{} port {}: {}; {} in all (version {})".format(
            '"{}" at '.format(info["name"]) if info["name"] else "", info["address"],
            info["port"], listing, _players(info.get("players", 0)), info.get("version", "?")))
    return 0


def _check_command(host, port, timeout):
    result = check_relay(host, port, timeout)
    print(result.message)
    return 0 if result.ok else 1


def _watch_command(group, host, port, timeout, every, show_all):
    result = check_relay(host, port, timeout, samples=1)
    if not result.ok:
        print(result.message)
        return 1
    if result.code != RELAY_OK or not result.status.get("observers"):
        print("Only this project's relay can be watched; the relay at {} cannot.".format(
            _where(host, port)))
        return 1
    groups = result.status.get("groups")
    if isinstance(groups, dict) and group not in groups and not result.status.get("more_groups"):
        print("The relay at {} has no group {}. Its groups: {}.".format(
            _where(host, port), _echo(group), _listing(sorted(groups), GROUPS_LISTED)))
        return 1
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        print("Could not connect to {}: {}.".format(_where(host, port), exc.strerror or exc))
        return 1
    with sock:
        print("Watching group {} at {}. Press Ctrl+C to stop.".format(group, _where(host, port)),
              flush=True)
        _stop_on_sigterm()
        return _Watcher(group, lambda line: print(line, flush=True), every, show_all).run(sock)


def _make_console_safe():
    # A Korean Windows console is cp949, some are ASCII only: print() and the
    # log (which writes to sys.stdout) show "?" for what the console cannot
    # show, instead of the relay dying of a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass                # no console, or one that cannot be changed


def _read_list(path, what):
    """Lines of a file, without blanks, surrounding spaces or # comments.
    A byte-order mark at the start (Windows Notepad writes one) is skipped."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            lines = [line.split("#", 1)[0].strip() for line in file]
    except (OSError, UnicodeDecodeError) as exc:
        raise RelayError("cannot read {} {}: {}".format(what, path, getattr(exc, "strerror", None) or exc))
    items = [line for line in lines if line]
    if not items:
        raise RelayError("{} {} has nothing in it".format(what, path))
    return items


def _print_lan_addresses(name):
    addresses = _lan_addresses()
    if addresses:
        print("Players on other computers: SERVER_IP =", " or ".join(
            '"{}"'.format(a) for a in [name] + addresses))
    else:
        print("No network address found: only games on this computer (localhost) can join.")
    print("", flush=True)


def _lan_addresses():
    """This machine's IPv4 addresses other than loopback, found without any traffic."""
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    try:        # Linux: ask each interface for its address
        import fcntl
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with probe:
            for _, name in socket.if_nameindex():
                try:
                    request = struct.pack("256s", name.encode()[:15])
                    reply = fcntl.ioctl(probe.fileno(), 0x8915, request)   # SIOCGIFADDR
                    found.add(socket.inet_ntoa(reply[20:24]))
                except OSError:
                    pass        # an interface without an IPv4 address
    except (ImportError, OSError, AttributeError):
        pass
    return sorted(a for a in found if not a.startswith("127."))


def _stop_on_sigterm():
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    try:
        signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, AttributeError):
        pass                    # not the main thread, or no SIGTERM here


# ---------------------------------------------------------------------------
# The board's page (kept in this file, so that nethelper.py still works alone)
# ---------------------------------------------------------------------------

_BOARD_PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Relay board</title>
<style>
:root { --bg: #0f1419; --card: #1b232c; --line: #2e3b48; --text: #eef2f5; --dim: #9aa9b7;
        --warn: #ffb020; --bad: #ff5c5c; --good: #4cd182; --accent: #5cb8ff; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--text);
       font: 16px/1.35 system-ui, "Segoe UI", "Malgun Gothic", "Noto Sans KR", sans-serif; }
header { display: flex; flex-wrap: wrap; gap: .4em 1.2em; align-items: baseline;
         padding: .6em 1em; border-bottom: 1px solid var(--line); position: sticky; top: 0;
         background: var(--bg); z-index: 2; }
h1 { font-size: 1.3em; margin: 0; }
#totals { display: flex; flex-wrap: wrap; gap: .3em 1.2em; color: var(--dim); }
#totals b { color: var(--text); font-size: 1.15em; }
#live { margin-left: auto; color: var(--dim); font-size: .9em; }
#problem { display: none; background: var(--bad); color: #fff; padding: .5em 1em; font-weight: 600; }
main { display: grid; grid-template-columns: 1fr minmax(16em, 22em); gap: 1em; padding: 1em; }
#groups { display: grid; grid-template-columns: repeat(auto-fill, minmax(25em, 1fr)); gap: .8em;
          align-content: start; }
.group { background: var(--card); border: 2px solid var(--line); border-radius: .5em; padding: .5em .7em;
         min-width: 0; }
.group.quiet { border-color: var(--warn); }
.group h2 { font-size: 1.15em; margin: 0 0 .3em; display: flex; gap: .5em; align-items: center;
            flex-wrap: wrap; }
.group h2 .rate { margin-left: auto; color: var(--dim); font-weight: normal; font-size: .85em; }
.badge { font-size: .7em; padding: .1em .5em; border-radius: 1em; font-weight: 700; }
.badge.quiet { background: var(--warn); color: #000; }
.badge.locked { background: var(--accent); color: #000; }
.badge.empty { background: var(--line); color: var(--dim); }
table { width: 100%; border-collapse: collapse; font-size: .85em; }
th { text-align: left; color: var(--dim); font-weight: normal; font-size: .85em; line-height: 1.1;
     vertical-align: bottom; }
td, th { padding: .15em .25em; }
td { white-space: nowrap; }
td .where { display: block; color: var(--dim); font-size: .8em; line-height: 1; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.quiet td.heard { color: var(--warn); font-weight: 700; }
.none { color: var(--dim); font-style: italic; margin: .2em 0; }
button { font: inherit; font-size: .85em; border: 1px solid var(--line); border-radius: .3em;
         background: #273341; color: var(--text); padding: .2em .6em; cursor: pointer; }
button:hover { border-color: var(--accent); }
button.kick { color: var(--bad); padding: .05em .4em; }
button.name { font-size: 1em; font-weight: 700; background: none; border: none; padding: 0;
              color: var(--text); text-decoration: underline dotted; }
.act { display: flex; gap: .3em; margin-top: .4em; }
.act input { flex: 1; min-width: 0; font: inherit; font-size: .85em; padding: .2em .4em;
             background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: .3em; }
.said { color: var(--dim); font-size: .8em; min-height: 1em; }
canvas.court { display: block; width: 100%; max-width: 28em; aspect-ratio: 4 / 3; margin: .3em auto;
               border-radius: .3em; background: #07210f; }
ol.recent { list-style: none; margin: .3em 0 0; padding: 0; font: .8em/1.3 ui-monospace, Consolas, monospace;
            color: var(--dim); max-height: 9em; overflow: hidden; }
ol.recent li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
aside h2 { font-size: 1.1em; margin: 0 0 .4em; }
header label { color: var(--dim); }
#events { list-style: none; margin: 0; padding: 0; font-size: .85em; }
#events li { padding: .2em 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
#events .t { color: var(--dim); margin-right: .4em; font-variant-numeric: tabular-nums; }
#events .k { font-weight: 700; margin-right: .3em; }
.k.joined { color: var(--good); } .k.left { color: var(--dim); } .k.refused, .k.dropped,
.k.kicked { color: var(--bad); } .k.warned { color: var(--warn); } .k.message, .k.locked,
.k.unlocked, .k.watching { color: var(--accent); }
body.watchall .group .players, body.watchall .group .act, body.watchall .group .said { display: none; }
body.watchall main { grid-template-columns: 1fr; }
body.watchall #groups { grid-template-columns: repeat(auto-fill, minmax(14em, 1fr)); }
body.watchall .group h2 { font-size: 1em; margin: 0; }
@media (max-width: 760px) {
  body { font-size: 15px; }
  main { grid-template-columns: 1fr; padding: .5em; }
  #groups { grid-template-columns: 1fr; }
  .wide { display: none; }
  #live { margin-left: 0; }
  header { position: static; }
}
@media (min-width: 1600px) { body { font-size: 18px; } }
</style>
</head>
<body>
<header>
  <h1>Relay board</h1>
  <div id="totals"></div>
  <label><input type="checkbox" id="watchall"> watch every game</label>
  <div id="live">connecting...</div>
</header>
<div id="problem"></div>
<main>
  <section id="groups"></section>
  <aside>
    <h2>Recent events</h2>
    <ol id="events"></ol>
  </aside>
</main>
<script>
"use strict";
// The relay's board. It asks the relay for its state every second (twice a
// second while it watches games) and draws it; it keeps no state of its own
// but which groups are watched. Every request carries the key from this
// page's address.
const KEY = new URLSearchParams(location.search).get("key") || "";
const watched = new Set();
const cards = new Map();
let lastGood = 0, timer = null;

function esc(text) {
  return String(text).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                   '"': "&quot;", "'": "&#39;"}[c]));
}
function bytes(n) {
  return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB"
                                             : (n / 1048576).toFixed(1) + " MB";
}
function clock(ageSeconds) {
  return new Date(Date.now() - ageSeconds * 1000).toTimeString().slice(0, 8);
}
function duration(s) {
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  return (h ? h + " h " : "") + m + " min " + (s % 60) + " s";
}
function problem(text) {
  const box = document.getElementById("problem");
  box.textContent = text || "";
  box.style.display = text ? "block" : "none";
}

async function call(path, body) {
  const options = {headers: {"X-Board-Key": KEY}, cache: "no-store"};
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(path, options);
  let value = {};
  try { value = await answer.json(); } catch (e) { value = {error: "HTTP " + answer.status}; }
  if (!answer.ok) throw new Error(value.error || ("HTTP " + answer.status));
  return value;
}

function card(group) {
  let el = cards.get(group);
  if (el) return el;
  el = document.createElement("article");
  el.className = "group";
  el.dataset.group = group;
  el.innerHTML = '<h2></h2><canvas class="court" width="400" height="300" hidden></canvas>' +
    '<div class="players"><table><thead><tr><th>player</th>' +
    "<th class=num title='Round trip from the relay to the game and back, as the relay " +
    "computer estimates it (it includes the game&#39;s wait before it answers)'>round trip</th>" +
    "<th class=num>msg/s</th><th class='num wide'>bytes/s</th><th class=num>last heard</th>" +
    "<th class='num wide' title='Bytes the relay holds for this game because it reads " +
    "too slowly'>waiting</th><th></th></tr></thead><tbody></tbody></table>" +
    '<p class="none">Nobody here yet.</p></div><ol class="recent" hidden></ol>' +
    '<div class="act"><input class="text" maxlength="200" placeholder="A message, or why you kick">' +
    '<button class="send">Send message</button><button class="lock">Lock</button></div>' +
    '<div class="said"></div>';
  el.addEventListener("click", event => act(el, event.target));
  el.querySelector("input").addEventListener("keydown", event => {
    if (event.key === "Enter") act(el, el.querySelector("button.send"));
  });
  document.getElementById("groups").appendChild(el);
  cards.set(group, el);
  return el;
}

async function act(el, target) {
  const group = el.dataset.group, input = el.querySelector("input.text");
  const said = el.querySelector(".said");
  let request = null, path = null;
  if (target.classList.contains("name")) {
    if (watched.has(group)) watched.delete(group); else watched.add(group);
    refresh();
    return;
  } else if (target.classList.contains("kick")) {
    path = "/kick";
    request = {group, name: target.dataset.name, text: input.value || "Removed by the teacher."};
  } else if (target.classList.contains("lock")) {
    path = "/lock";
    request = {group, locked: target.dataset.locked !== "true"};
  } else if (target.classList.contains("send")) {
    if (!input.value.trim()) { said.textContent = "Type a message first."; return; }
    path = "/message";
    request = {group, text: input.value};
  } else {
    return;
  }
  try {
    const answer = await call(path, request);
    said.textContent = path === "/kick" ? "Kicked " + request.name + "." :
                       path === "/lock" ? (answer.locked ? "Locked: no new players." : "Unlocked.") :
                       "Sent to " + answer.told + ".";
    if (path !== "/lock") input.value = "";
  } catch (error) {
    said.textContent = "Not done: " + error.message;
  }
  refresh();
}

// Rows are kept and only their text changes, so that a Kick button is not
// replaced under the teacher's finger between two polls.
function showPlayers(el, players) {
  const body = el.querySelector("tbody");
  const rows = new Map([...body.rows].map(row => [row.dataset.name, row]));
  el.querySelector("table").hidden = !players.length;
  el.querySelector("p.none").hidden = players.length > 0;
  players.forEach((p, i) => {
    let row = rows.get(p.name);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.name = p.name;
      row.innerHTML = "<td><span class=name></span><span class=where></span></td>" +
        "<td class=num></td><td class=num></td>" +
        "<td class='num wide'></td><td class='num heard'></td><td class='num wide'></td>" +
        "<td><button class=kick>Kick</button></td>";
      const kick = row.querySelector("button");
      kick.dataset.name = p.name;
      kick.title = "Kick " + p.name;
    }
    rows.delete(p.name);
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
    row.className = "player" + (p.heard_s >= 3 ? " quiet" : "");
    const texts = [p.rtt_ms === null ? "-" : p.rtt_ms + " ms", p.msgs_s, bytes(p.bytes_s),
                   p.heard_s.toFixed(1) + " s", bytes(p.waiting)];
    row.querySelector(".name").textContent = p.name;
    row.querySelector(".where").textContent = p.where;
    texts.forEach((text, j) => {
      if (row.cells[j + 1].textContent !== String(text)) row.cells[j + 1].textContent = text;
    });
  });
  for (const row of rows.values()) row.remove();
}

function drawCourt(canvas, court) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height, sx = w / 800, sy = h / 600;
  g.fillStyle = "#07210f"; g.fillRect(0, 0, w, h);
  g.strokeStyle = "rgba(255,255,255,.35)"; g.setLineDash([8, 8]); g.lineWidth = 2;
  g.beginPath(); g.moveTo(w / 2, 0); g.lineTo(w / 2, h); g.stroke(); g.setLineDash([]);
  g.fillStyle = "#fff"; g.font = "bold " + Math.round(h / 7) + "px system-ui, sans-serif";
  g.textAlign = "center"; g.textBaseline = "top";
  g.fillText(court.score[0], w * 0.4, h * 0.04); g.fillText(court.score[1], w * 0.6, h * 0.04);
  for (const [name, [x, y]] of Object.entries(court.bars)) {
    g.fillStyle = x < 400 ? "#5cb8ff" : "#ffb020";
    g.fillRect((x - 7) * sx, (y - 50) * sy, Math.max(15 * sx, 4), 100 * sy);
  }
  if (court.ball) {
    g.fillStyle = "#fff"; g.beginPath();
    g.arc(court.ball[0] * sx, court.ball[1] * sy, Math.max(10 * sx, 3), 0, 2 * Math.PI); g.fill();
  }
}

function show(state) {
  const playing = state.groups.filter(g => g.players.length).length;
  document.getElementById("totals").innerHTML =
    "<span><b>" + state.connections + "</b> connections</span>" +
    "<span><b>" + state.players + "</b> players in <b>" + playing + "</b> of " + state.groups.length +
    " groups</span><span><b>" + Math.round(state.msgs_s) + "</b> messages/s</span>" +
    "<span>up " + duration(state.uptime_s) + "</span>";
  const all = document.getElementById("watchall").checked;
  document.body.classList.toggle("watchall", all);
  const seen = new Set();
  for (const group of state.groups) {
    seen.add(group.name);
    const el = card(group.name);
    const isWatched = group.court !== undefined && (watched.has(group.name) || all);
    el.classList.toggle("quiet", group.quiet);
    el.classList.toggle("locked", group.locked);
    el.querySelector("h2").innerHTML = '<button class="name" title="Watch this game">' + esc(group.name) +
      "</button>" + (group.quiet ? '<span class="badge quiet">not heard for 3 s</span>' : "") +
      (group.locked ? '<span class="badge locked">locked</span>' : "") +
      (group.players.length ? "" : '<span class="badge empty">empty</span>') +
      (group.watchers ? '<span class="badge empty">' + group.watchers + " watching</span>" : "") +
      '<span class="rate">' + Math.round(group.msgs_s) + " msg/s</span>";
    const lock = el.querySelector("button.lock");
    lock.textContent = group.locked ? "Unlock" : "Lock";
    lock.dataset.locked = group.locked;
    showPlayers(el, group.players);
    const canvas = el.querySelector("canvas.court"), recent = el.querySelector("ol.recent");
    canvas.hidden = !(isWatched && group.court.pong);
    if (!canvas.hidden) drawCourt(canvas, group.court);
    recent.hidden = group.recent === undefined || all || !watched.has(group.name);
    if (!recent.hidden) {
      recent.innerHTML = group.recent.slice().reverse().map(m => "<li>" + clock(m[0]) + " " +
        esc(m[1]) + " -> " + esc(m[2]) + ": " + esc(m[3]) + " " + esc(m[4]) + "</li>").join("") ||
        "<li>No messages yet.</li>";
    }
  }
  for (const [name, el] of cards) if (!seen.has(name)) { el.remove(); cards.delete(name); }
  document.getElementById("events").innerHTML = state.events.slice().reverse().map(e =>
    "<li><span class=t>" + clock(e[0]) + "</span><span class='k " + esc(e[1]) + "'>" + esc(e[1]) +
    "</span>" + esc(e[2].replace(/^\S+\s+/, "")) + "</li>").join("") || "<li>Nothing yet.</li>";
}

async function refresh() {
  clearTimeout(timer);
  const all = document.getElementById("watchall").checked;
  const watch = all ? [] : [...watched], courts = all ? [...cards.keys()] : [];
  try {
    const state = await call("/state?watch=" + encodeURIComponent(watch.join(",")) +
                             "&court=" + encodeURIComponent(courts.join(",")));
    show(state);
    lastGood = Date.now();
    problem("");
    document.getElementById("live").textContent = "live: " + new Date().toTimeString().slice(0, 8) +
      (watch.length + courts.length ? ", watching " + (watch.length + courts.length) : "");
  } catch (error) {
    problem(error.message.includes("key") || error.message.includes("wrong") ? error.message :
            "No answer from the relay" + (lastGood ? " since " + new Date(lastGood).toTimeString().slice(0, 8) : "") +
            " (" + error.message + ").");
  }
  // (The relay reads the courts of more than 4 games once a second only.)
  const games = all ? cards.size : watched.size;
  timer = setTimeout(refresh, games && games <= 4 ? 500 : 1000);
}
document.getElementById("watchall").addEventListener("change", refresh);
refresh();
</script>
</body>
</html>
"""


# Started as a program, this file runs the relay, however it was started:
# "python nethelper.py OPTIONS" names it "__main__"; the Mu editor's Run and
# Play buttons run "python -m pgzero nethelper.py", which names it
# "pgzero.builtins", gives it no options and would open an empty Pygame Zero
# window after it; Mu's Package puts an import of pgzrun first, which names
# it "pgzero.builtins" too. (Imported by a game, it is "nethelper".)
if __name__ in ("__main__", "pgzero.builtins"):
    if "pygame" in sys.modules:         # Pygame Zero opened a window: a relay has none
        sys.modules["pygame"].display.quit()
    sys.exit(main([] if getattr(sys, "_pgzrun", False) else None))
