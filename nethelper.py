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
functions and a frame reader that never touch a socket), NetNode, Relay, and
the command line.
"""

import argparse
import collections
import errno
import inspect
import json
import logging
import os
import random
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time

__version__ = "1.0.0"

__all__ = [
    "NetNode", "Relay", "RelayError", "ProtocolError", "FrameReader", "Frame",
    "encode_frame", "encode_json", "decode_json", "DEFAULT_PORT", "main",
]

log = logging.getLogger("nethelper")


# ---------------------------------------------------------------------------
# Protocol constants
# ---------------------------------------------------------------------------

PROTOCOL_VERSION = b"020"
DEFAULT_PORT = 65042
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

# REQ types (node -> relay) and SYSM types (relay -> node). SYSM 1-3 are this
# project's additions; an original node ignores them.
REQ_LEAVE, REQ_PEERS = 0, 1
SYSM_NAME, SYSM_REFUSED, SYSM_WARNING, SYSM_GOODBYE = 0, 1, 2, 3

# Why a relay refuses a node (the "msg" of SYSM type 1). They are also the
# values of NetNode.error_code after such a refusal.
NAME_TAKEN = "name_taken"
UNKNOWN_GROUP = "unknown_group"
GROUP_FULL = "group_full"
BAD_REQUEST = "bad_request"
SERVER_FULL = "server_full"
WRONG_VERSION = "version"

# Why a relay closes a member's connection (the "msg" of SYSM type 3), or
# warns it first (SYSM type 2).
OVER_QUOTA = "over_quota"
TOO_SLOW = "too_slow"
BAD_FRAME = "bad_frame"
SILENT = "timeout"
RELAY_STOPPING = "relay_stopping"

# NetNode.error_code values that come from the node itself, not from a relay.
NO_RELAY = "no_relay"            # nothing listens at that address and port
TIMEOUT = "timeout"              # no answer in time
BAD_ADDRESS = "bad_address"      # the host name does not resolve
CLOSED = "closed"                # closed while joining, without a reason (an original relay)
LOST = "lost"                    # the connection broke (or went silent) after joining
PROTOCOL = "protocol"            # the relay sent bytes this node cannot read

MAX_NAME_LENGTH = 100
HEARTBEAT_INTERVAL = 1.0      # a node with nothing to say sends HEART this often
LIVENESS_TIMEOUT = 5.0        # the relay drops a node silent for this long

# Layout of the 11-byte header: length, version, dest, sender, type, meta.
_HEADER = struct.Struct(">I3sBBBB")
_RECV_SIZE = 256 * 1024       # read up to this much per recv_into() call
_SMALL_READ = 64 * 1024       # a node's read this short emptied its socket: stop there


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
    below 11, or a frame larger than ``max_frame_size``), before waiting for
    the body, so a bogus length cannot make it buffer without limit.
    """

    def __init__(self, max_frame_size=DEFAULT_MAX_FRAME_SIZE):
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._start = 0          # where the first unread byte is in _buffer

    def feed(self, data):
        self._buffer += data

    def buffered(self):
        """How many received bytes are not yet part of a returned frame."""
        return len(self._buffer) - self._start

    def next_frame(self):
        """Return the next complete Frame, or None if more bytes are needed."""
        start = self._start
        header = self._peek_header(start)
        if header is None:
            self._compact()
            return None
        end, frame_type, dest, sender, meta = header
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
        while True:
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
        if end == start:
            return None
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
    auth = decode_json(payload)
    if not isinstance(auth, dict):
        raise ProtocolError("AUTH payload is not a JSON object", "bad_payload")
    name, group = auth.get("name"), auth.get("group")
    if not isinstance(name, str) or not isinstance(group, str):
        raise ProtocolError("AUTH needs a string name and a string group", "bad_payload")
    return name, group


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


# ---------------------------------------------------------------------------
# NetNode: the game's side
# ---------------------------------------------------------------------------

# A NetNode's states. connect() looks the relay's address up (LOOKING_UP),
# starts a TCP connection (CONNECTING), and once it is made sends AUTH and
# waits for the relay's answer (JOINING); the node is JOINED when its own
# name shows up in a PEERS list. Any failure, and disconnect(), bring it
# back to IDLE.
_IDLE, _LOOKING_UP, _CONNECTING, _JOINING, _JOINED = (
    "idle", "looking up", "connecting", "joining", "joined")

# What connect_ex() answers while a non-blocking connection is under way
# (Windows says "would block" where Linux and macOS say "in progress").
_CONNECT_UNDER_WAY = {0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY,
                      getattr(errno, "WSAEWOULDBLOCK", errno.EWOULDBLOCK)}
_CONNECT_REFUSED = {errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", errno.ECONNREFUSED)}


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
            self.addresses = []


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
    # connect(); tests shrink them.
    max_frame_size = DEFAULT_MAX_FRAME_SIZE   # biggest frame sent or accepted (as the relay's)
    recv_budget_bytes = 256 * 1024            # process_recv() reads at most this much...
    recv_budget_seconds = 0.005               # ...and files messages for about this long
    max_queued = 100000                       # unread messages kept per (sender, title)
    max_titles = 1000                         # titles kept per sender
    max_inbox_bytes = 4 * 1024 * 1024         # unread messages kept, in bytes as they came
    max_unsent_bytes = 4 * 1024 * 1024        # more unsent than this: the relay is stuck
    relay_silence_timeout = LIVENESS_TIMEOUT  # for a relay that sends heartbeats
    heartbeat_interval = HEARTBEAT_INTERVAL   # we send HEART when idle this long

    def __init__(self):
        self.name = ""
        self.group = ""
        self.error = None
        self.error_code = None
        self.warning = None
        self._sock = None
        self._state = _IDLE
        self._recv_buffer = _receive_buffer()
        self._reset_session()

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
        self._close()
        self._reset_session()
        self.name, self.group = name, group
        self.error = self.error_code = self.warning = None
        port = DEFAULT_PORT if port is None else int(port)
        self._where = "{}:{}".format(host, port)
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        if name and name_problem(name):
            return self._fail(BAD_REQUEST, name_problem(name))
        self._host = host
        self._lookup = _HostLookup(host, port, in_background=not wait)
        self._state = _LOOKING_UP
        if self._lookup.addresses:
            self._see_lookup()  # found at once: start the TCP connection now
        if not wait:
            return self.connecting      # process_send() and process_recv() carry it on
        return self._wait_until_joined()

    @property
    def connected(self):
        """True while we are a member of the group."""
        return self._state == _JOINED

    @property
    def connecting(self):
        """True while a ``connect()`` attempt is still under way."""
        return self._state in (_LOOKING_UP, _CONNECTING, _JOINING)

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
        if self._state == _JOINED:
            self._outgoing += req_frame(self._my_addr, REQ_LEAVE)
            self._flush()
        self._close()
        self._peers.clear()

    # -- sending and receiving ----------------------------------------------

    def process_send(self):
        """Send everything queued by ``send_msg()``. Call it every frame.

        When there is nothing to send it sends a heartbeat now and then, so
        that the relay knows we are still here. If the relay stops taking
        what we send, the connection counts as lost once more than
        ``max_unsent_bytes`` wait, rather than filling the game's memory.
        """
        if self._state in (_LOOKING_UP, _CONNECTING):
            self._go_on_connecting()
        if self._state == _JOINED and not self._send_failed:
            for dest, messages in self._outbox.items():
                self._add_data_frames(dest, messages)
            self._outbox.clear()
            if not self._outgoing and time.monotonic() - self._last_sent >= self.heartbeat_interval:
                self._outgoing += heart_frame(self._my_addr)
        self._flush()
        if len(self._outgoing) > self.max_unsent_bytes:
            self._lose(LOST, "The relay at {} has stopped taking what this node sends "
                       "({} KiB wait to go): it is stuck, or the game sends more than the "
                       "network can carry.".format(self._where, len(self._outgoing) // 1024))

    def process_recv(self):
        """Read what has arrived and file the messages. Call it every frame.

        One call does a bounded amount of work, so that a flood cannot
        freeze the game: it reads at most ``recv_budget_bytes`` and files
        messages for about ``recv_budget_seconds``; the rest waits for the
        next call.
        """
        if self._state in (_LOOKING_UP, _CONNECTING):
            self._go_on_connecting()
        if self._state not in (_JOINING, _JOINED):
            return
        stop_at = time.monotonic() + self.recv_budget_seconds
        if self._backlog:
            self._handle_frames(stop_at)        # what the last call had no time for
        if not self._backlog and not self._ended and self._sock is not None:
            self._ended = self._read_some()
            self._handle_frames(stop_at)
        if self._sock is None:
            return
        # Frames that came before the end are filed first: they may say why.
        if self._ended and not self._backlog:
            self._on_connection_ended(self._ended)
        else:
            self._check_timers()

    def send_msg(self, name, title, content, queue=False):
        """Queue a message for the node called ``name`` (or "ALL" for everyone else).

        ``content`` can be anything JSON can carry; it is copied now, so
        changing your variable afterwards does not change the message. With
        ``queue=False`` the receiver keeps only the latest unread message of
        this title; with ``queue=True`` every message is kept in order.
        Returns False if there is no such node (or we are not connected).
        Raises TypeError or ValueError if JSON cannot carry ``content``, and
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
        dest = ALL_ADDR if name == "ALL" else self._peers.get(name)
        if dest is None or self._state != _JOINED:
            return False
        self._outbox.setdefault(dest, []).append(encoded)
        return True

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
        return list(self._peers)

    def get_name(self):
        """Our name (the one the relay chose, if we asked it to)."""
        return self.name

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

    # -- private helpers ------------------------------------------------------

    def _reset_session(self):
        self._reader = FrameReader(self.max_frame_size)
        self._outgoing = bytearray()
        self._outbox = {}                                   # dest addr -> [encoded message]
        self._inbox = _Inbox(self.max_queued, self.max_titles, self.max_inbox_bytes)
        self._peers = {}                                    # name -> addr, in the relay's order
        self._names = {}                                    # addr -> name
        self._my_addr = UNKNOWN_ADDR
        self._host = ""
        self._lookup = None         # a _HostLookup
        self._addresses = []        # where the relay may be, still to try
        self._last_sent = time.monotonic()
        self._last_heard = time.monotonic()
        self._relay_beats = False   # True once the relay has sent a HEART (an original never does)
        self._backlog = False       # frames read but not yet filed: the time budget ran out
        self._ended = None          # why the stream ended, once it has
        self._send_failed = None    # why sending failed, if it did
        self._where = ""
        self._timeout = 0
        self._deadline = 0.0

    def _go_on_connecting(self):
        """Move a connect() attempt on as far as it can go without waiting."""
        if self._state == _LOOKING_UP:
            self._see_lookup()
        if self._state == _CONNECTING:
            self._see_tcp_connect()

    def _see_lookup(self):
        if self._lookup.addresses is None:
            if time.monotonic() >= self._deadline:
                self._close()
                self._fail(TIMEOUT, 'Looking up the computer called "{}" took more than {} s. '
                           "Check SERVER_IP.".format(self._host, self._timeout))
        elif not self._lookup.addresses:
            self._close()
            self._fail(BAD_ADDRESS, 'Cannot find a computer called "{}". '
                       "Check SERVER_IP.".format(self._host))
        else:
            self._addresses = list(self._lookup.addresses)
            self._state = _CONNECTING
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
            # it failed, SO_ERROR says why. poll() is used where it exists,
            # since select() cannot watch a socket numbered 1024 or more on
            # Linux; Windows has no poll(), and its select() reports a failed
            # attempt as an "exceptional condition".
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self._sock, select.POLLOUT)
                writable, failed = poller.poll(0), False
            else:
                _, writable, failed = select.select([], [self._sock], [self._sock], 0)
            problem = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as exc:
            writable, failed, problem = False, True, exc.errno
        if problem or failed:
            self._close_socket()
            if self._addresses:
                self._connect_next_address()        # e.g. "localhost" as ::1, then 127.0.0.1
            else:
                self._give_up_connecting(problem)
        elif writable:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._state = _JOINING
            self._last_heard = time.monotonic()
            self._outgoing += auth_frame(self.name, self.group)
            self._flush()
        elif time.monotonic() >= self._deadline:
            self._close()
            self._fail(TIMEOUT, "No answer from {} within {} s. Check SERVER_IP, and that "
                       "the relay's firewall lets TCP port {} in.".format(
                           self._where, self._timeout, self._where.rsplit(":", 1)[1]))

    def _give_up_connecting(self, problem):
        self._close()
        if problem in _CONNECT_REFUSED:
            self._fail(NO_RELAY, "No relay is running at {}. Start one with: python "
                       "nethelper.py -g {}".format(self._where, self.group or "<group>"))
        else:
            why = "{} (error {})".format(os.strerror(problem), problem) if problem else "unknown error"
            self._fail(NO_RELAY, "Cannot reach {}: {}".format(self._where, why))

    def _wait_until_joined(self):
        """connect(wait=True): go on until the attempt ends, sleeping in
        select() until the socket has news (or the timeout nears)."""
        self._go_on_connecting()
        with selectors.DefaultSelector() as selector:
            while self.connecting:
                events = selectors.EVENT_WRITE if self._state == _CONNECTING else selectors.EVENT_READ
                selector.register(self._sock, events)
                selector.select(max(0.0, min(self._deadline - time.monotonic(), 0.5)))
                selector.unregister(self._sock)
                self.process_recv()
                self._flush()
        return self.connected

    def _flush(self):
        if self._state not in (_JOINING, _JOINED) or not self._outgoing or self._send_failed:
            return
        try:
            sent = self._sock.send(self._outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            # The connection broke. What the relay sent before may still wait
            # to be read (a goodbye says why), so process_recv() reports the
            # loss once it has read all that.
            self._send_failed = exc.strerror or str(exc)
            self._outgoing.clear()
            return
        del self._outgoing[:sent]
        self._last_sent = time.monotonic()

    def _read_some(self):
        """Read at most recv_budget_bytes into the frame reader. Returns why
        the stream ended, or None while it goes on."""
        budget = self.recv_budget_bytes
        try:
            while budget > 0:
                size = self._sock.recv_into(self._recv_buffer, min(budget, _RECV_SIZE))
                if not size:
                    return "closed"
                self._reader.feed(self._recv_buffer[:size])
                self._last_heard = time.monotonic()
                budget -= size
                if size < _SMALL_READ:
                    # A game's frame brings a few hundred bytes: asking again
                    # would only hear "nothing more", at the price of a system
                    # call. A backlog comes in big reads, so it is read on.
                    break
        except (BlockingIOError, InterruptedError):
            return self._send_failed    # all read: now a failed send ends it
        except OSError as exc:
            return exc.strerror or str(exc)
        return None

    def _handle_frames(self, stop_at):
        """File the frames read so far, until the time.monotonic() ``stop_at``
        at most; the rest wait (_backlog) for the next process_recv()."""
        self._backlog = False
        try:
            for frame in self._reader:
                if frame.type == DATA:
                    self._on_data(frame)
                elif frame.type == PEERS:
                    self._on_peers(frame)
                elif frame.type == SYSM:
                    self._on_sysm(frame)
                elif frame.type == HEART and frame.sender == RELAY_ADDR:
                    self._relay_beats = True
                # other types are not for nodes, and a newer relay may add some
                if self._sock is None:
                    break           # refused or lost: the rest is moot
                if time.monotonic() >= stop_at:
                    self._backlog = True
                    break
        except ProtocolError as exc:
            self._lose(PROTOCOL, "The relay at {} sent something this node cannot read "
                       "({}).".format(self._where, exc))

    def _check_timers(self):
        now = time.monotonic()
        if self._state == _JOINING and now >= self._deadline:
            self._lose(TIMEOUT, "The relay at {} did not answer the request to join "
                       "within {} s.".format(self._where, self._timeout))
        elif (self._state == _JOINED and self._relay_beats
                and now - self._last_heard >= self.relay_silence_timeout):
            # Only a relay that sends heartbeats can be silent for too long:
            # an original relay says nothing while the other player is quiet.
            self._lose(LOST, "The relay at {} has said nothing for {:g} s although it sends "
                       "a heartbeat every second: it, or the network, has stopped.".format(
                           self._where, self.relay_silence_timeout))

    def _on_data(self, frame):
        try:
            messages = parse_messages(frame.payload)
        except ProtocolError as exc:
            # A peer's bad DATA is its own problem: skip it and stay connected.
            log.debug("ignored DATA from address %d: %s", frame.sender, exc)
            return
        if not messages:
            return
        sender = self._names.get(frame.sender)
        size = len(frame.raw) // len(messages)      # each message's share of the frame
        for title, content, queue in messages:
            self._inbox.add(sender, title, content, size, queue)

    def _add_data_frames(self, dest, messages):
        """Queue DATA frames carrying ``messages``, as many per frame as fit
        in max_frame_size: a relay drops a node that sends a bigger frame."""
        batch, frame_size = [], HEADER_SIZE + 1         # the header and "["
        for message in messages:
            if batch and frame_size + len(message) + 1 > self.max_frame_size:
                self._outgoing += data_frame(dest, self._my_addr, batch)
                batch, frame_size = [], HEADER_SIZE + 1
            batch.append(message)
            frame_size += len(message) + 1              # the message and "," or "]"
        if batch:
            self._outgoing += data_frame(dest, self._my_addr, batch)

    def _on_peers(self, frame):
        try:
            peers = parse_peers(frame.payload)
        except ProtocolError as exc:
            log.debug("ignored PEERS: %s", exc)
            return
        self._peers = dict(peers)
        self._names = {addr: name for name, addr in peers}
        if self.name in self._peers:
            self._my_addr = self._peers[self.name]
            self._state = _JOINED

    def _on_sysm(self, frame):
        try:
            message = parse_typed(frame.payload)
        except ProtocolError:
            return
        if message["type"] == SYSM_NAME and isinstance(message.get("data"), str):
            self.name = message["data"]
        elif message["type"] == SYSM_REFUSED:
            reason = message.get("data") or "The relay refused to let us join."
            self._lose(str(message.get("msg")), str(reason))
        elif message["type"] == SYSM_WARNING:
            self.warning = str(message.get("data") or message.get("msg"))
            log.warning("The relay at %s warns: %s", self._where, self.warning)
        elif message["type"] == SYSM_GOODBYE:
            # The relay is closing our connection, and says why.
            reason = message.get("data") or "The relay closed the connection."
            self._lose(str(message.get("msg") or LOST), str(reason))

    def _on_connection_ended(self, how):
        if self._state == _JOINED and how == "closed":
            self._lose(LOST, "The relay at {} closed the connection (it stopped, or "
                       "dropped this node).".format(self._where))
        elif self._state == _JOINED:
            self._lose(LOST, "The connection to the relay at {} was lost ({}).".format(
                self._where, how))
        else:
            # An original relay refuses by closing without saying why.
            self._lose(CLOSED, 'The relay at {} closed the connection while we were joining: '
                       'the name "{}" may be taken, or the group "{}" unknown or full.'.format(
                           self._where, self.name, self.group))

    def _lose(self, code, reason):
        if self._sock is None:
            return
        self._close()
        self._peers.clear()
        self._fail(code, reason)

    def _fail(self, code, reason):
        self.error_code, self.error = code, reason
        log.info("%s", reason)
        return False

    def _close(self):
        self._close_socket()
        self._state = _IDLE

    def _close_socket(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None


# ---------------------------------------------------------------------------
# Relay: the server
# ---------------------------------------------------------------------------

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
    ``serve_forever()`` runs the loop until ``stop()`` is called.
    """

    def __init__(self, groups, host=None, port=DEFAULT_PORT, names=None,
                 max_peers=MAX_NODES_PER_GROUP, max_frame_size=DEFAULT_MAX_FRAME_SIZE,
                 max_connections=1000, max_pending=1024 * 1024,
                 liveness_timeout=LIVENESS_TIMEOUT, auth_timeout=5.0, summary_interval=5.0):
        groups = list(groups)
        if not groups or not all(isinstance(g, str) and g for g in groups):
            raise ValueError("a relay needs at least one group, and group names cannot be empty")
        if not 1 <= max_peers <= MAX_NODES_PER_GROUP:
            raise ValueError("max_peers must be from 1 to {}".format(MAX_NODES_PER_GROUP))
        self.groups = {name: {} for name in groups}      # group -> {addr: connection}
        self.host = host
        self.port = port
        self.names = list(names) if names else list(_ANIMALS)
        for name in self.names:
            if name_problem(name):
                raise ValueError("cannot hand out the name {!r}: {}".format(name, name_problem(name)))
        if max_connections < 1 or max_frame_size < 256:
            raise ValueError("max_connections must be at least 1 and max_frame_size at least 256")
        random.shuffle(self.names)
        self.max_peers = max_peers
        self.max_frame_size = max_frame_size
        self.max_connections = _fit_to_open_file_limit(max_connections)
        self.max_pending = max_pending
        self.liveness_timeout = liveness_timeout
        self.auth_timeout = auth_timeout
        self.summary_interval = summary_interval
        self._listener = None
        self._selector = None
        self._connections = set()
        self._want_flush = set()
        self._to_drop = []           # (connection, reason): dropped at the end of the turn
        self._stopping = False
        self._thread = None
        self._wake_send = self._wake_recv = None
        self._recv_buffer = _receive_buffer()

    # -- life cycle -----------------------------------------------------------

    def start(self):
        """Bind the listening socket. After this, ``port`` is the real port."""
        self._listener = _listen(self.host, self.port)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._selector.register(self._wake_recv, selectors.EVENT_READ, None)
        self._stopping = False
        return self

    def serve_forever(self):
        """Run the relay until ``stop()`` is called (from another thread)."""
        if self._listener is None:
            self.start()
        next_check = time.monotonic() + 0.5
        next_summary = time.monotonic() + self.summary_interval
        try:
            while not self._stopping:
                for key, events in self._selector.select(timeout=0.5):
                    if key.data is not None:
                        self._service(key.data, events)
                    elif key.fileobj is self._listener:
                        self._accept_all()
                    else:
                        self._drain_wake_socket()
                while self._to_drop:
                    self._drop(*self._to_drop.pop())
                self._flush_all()
                now = time.monotonic()
                if now >= next_check:
                    self._drop_silent(now)
                    next_check = now + 0.5
                if now >= next_summary:
                    self._log_summary()
                    next_summary = now + self.summary_interval
        finally:
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

    def members(self, group):
        """Names in ``group``, in the order they joined."""
        return [c.name for c in self.groups[group].values()]

    # -- reading --------------------------------------------------------------

    def _accept_all(self):
        for _ in range(64):         # a bounded batch, so readers are not starved
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("could not accept a connection: %s", exc)
                return
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = _Connection(sock, address, FrameReader(self.max_frame_size))
            self._connections.add(conn)
            self._selector.register(sock, selectors.EVENT_READ, conn)
            if len(self._connections) > self.max_connections:
                self._refuse(conn, SERVER_FULL, "The relay is full ({} connections). Try again "
                             "later.".format(self.max_connections))

    def _service(self, conn, events):
        try:
            if events & selectors.EVENT_WRITE:
                self._send_pending(conn)
            if events & selectors.EVENT_READ and not conn.closed:
                self._read(conn)
        except Exception:       # a bug must cost one connection, never the relay
            log.exception("unexpected error serving %s", conn)
            self._drop(conn, "dropped after an internal error")

    def _read(self, conn):
        try:
            size = conn.sock.recv_into(self._recv_buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, "connection lost ({})".format(exc.strerror or exc))
            return
        if not size:
            self._drop(conn, "left" if conn.group is not None else "closed before joining")
            return
        if conn.refused:
            return                  # it is being shown the door: ignore what it says
        conn.last_heard = time.monotonic()
        reader = conn.reader
        reader.feed(self._recv_buffer[:size])
        try:
            while reader.buffered():
                # The hot path: runs of DATA frames go out as they came, in
                # one piece, without being decoded.
                run = reader.next_run(DATA, conn.addr) if conn.group is not None else None
                if run is not None:
                    self._forward(conn, *run)
                    continue
                frame = reader.next_frame()
                if frame is None:
                    return
                self._handle(conn, frame)
                if conn.closed or conn.refused:
                    return
        except ProtocolError as exc:
            if exc.code == "version" and conn.group is None:
                self._refuse(conn, WRONG_VERSION, "This relay speaks nethelper protocol 020 and "
                             "cannot understand your node ({}).".format(exc))
            else:
                self._drop(conn, "dropped for bad input: {}".format(exc))

    def _handle(self, conn, frame):
        if frame.type == AUTH:
            if conn.group is None:
                self._authenticate(conn, frame)
            return
        if conn.group is None:
            return                  # nothing counts before AUTH is accepted
        if frame.sender != conn.addr:
            log.debug("ignored a frame from %s with forged sender %d", conn, frame.sender)
        elif frame.type == DATA:
            self._forward(conn, frame.dest, frame.raw)
        elif frame.type == REQ:
            self._request(conn, frame)
        # HEART only needs to have arrived; unknown types are ignored.

    def _forward(self, conn, dest, data):
        """Pass DATA frames (their bytes unchanged) on to ``dest`` in ``conn``'s group."""
        members = self.groups[conn.group]
        if dest == ALL_ADDR:
            for addr, member in members.items():
                if addr != conn.addr:
                    self._queue(member, data)
        else:
            member = members.get(dest)
            if member is not None:
                self._queue(member, data)

    def _request(self, conn, frame):
        try:
            request = parse_typed(frame.payload)
        except ProtocolError as exc:
            log.debug("ignored a REQ from %s: %s", conn, exc)
            return
        if request["type"] == REQ_LEAVE:
            self._drop(conn, "left")
        elif request["type"] == REQ_PEERS:
            self._queue(conn, peers_frame(conn.addr, self._peer_list(conn.group)))

    def _authenticate(self, conn, frame):
        try:
            name, group = parse_auth(frame.payload)
        except ProtocolError as exc:
            self._refuse(conn, BAD_REQUEST, "The request to join was malformed ({}).".format(exc))
            return
        members = self.groups.get(group)
        if members is None:
            # repr() keeps a group name full of line breaks on one log line
            self._refuse(conn, UNKNOWN_GROUP, "This relay has no group {!r}. Its groups: {}.".format(
                group, ", ".join(sorted(self.groups))))
        elif name and name_problem(name):
            self._refuse(conn, BAD_REQUEST, name_problem(name))
        elif name and any(m.name == name for m in members.values()):
            self._refuse(conn, NAME_TAKEN, 'The name "{}" is already taken in group "{}".'.format(
                name, group))
        elif len(members) >= self.max_peers:
            self._refuse(conn, GROUP_FULL, 'Group "{}" is full ({} of {}).'.format(
                group, len(members), self.max_peers))
        else:
            self._admit(conn, name, group)

    def _admit(self, conn, name, group):
        members = self.groups[group]
        if not name:
            name = self._choose_name(members)
            self._queue(conn, sysm_frame(UNKNOWN_ADDR, SYSM_NAME, None, name))
        conn.name, conn.group = name, group
        conn.addr = next(a for a in range(1, MAX_NODES_PER_GROUP + 1) if a not in members)
        members[conn.addr] = conn
        log.info("joined   %s: %s (address %d) from %s", group, name, conn.addr, conn.where)
        self._send_peers(group)

    # -- writing --------------------------------------------------------------

    def _queue(self, conn, data):
        """Send ``data`` to ``conn`` now if nothing is waiting for it, else
        queue it behind what is. A connection that fails is dropped at the
        end of the turn, not now: the caller may be walking through its group."""
        if conn.closed or conn.doomed:
            return
        if not conn.pending and not conn.refused:
            # The usual case. Sending at once, rather than at the end of the
            # turn, spares the frame waiting for every other socket's recv().
            sent, broken = _send_some(conn.sock, data)
            if broken:
                self._drop_later(conn, broken)
                return
            if sent == len(data):
                return
            data = data[sent:]
        conn.pending.append(data)
        conn.pending_size += len(data)
        if conn.pending_size > self.max_pending:
            self._drop_later(conn, "too slow: over {} bytes waiting for it".format(
                self.max_pending))      # it is not reading
        else:
            self._want_flush.add(conn)

    def _drop_later(self, conn, reason):
        conn.doomed = True
        self._to_drop.append((conn, reason))

    def _flush_all(self):
        # What could not go out at once: one send per socket, whatever it holds.
        while self._want_flush:
            conn = self._want_flush.pop()
            if not conn.closed and not conn.waiting_to_write:
                self._send_pending(conn)

    def _send_pending(self, conn):
        if not conn.pending:
            return
        data = conn.pending[0] if len(conn.pending) == 1 else b"".join(conn.pending)
        sent, broken = _send_some(conn.sock, data)
        if broken:
            self._drop(conn, broken)
            return
        rest = data[sent:]
        conn.pending = [rest] if rest else []
        conn.pending_size = len(rest)
        if rest and not conn.waiting_to_write:
            conn.waiting_to_write = True
            self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        elif not rest and conn.waiting_to_write:
            conn.waiting_to_write = False
            self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        if not rest and conn.refused:
            # The refusal is out. Closing only our side lets it arrive intact;
            # the socket goes when the node hangs up (or after 2 s).
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _send_peers(self, group):
        frame = peers_frame(ALL_ADDR, self._peer_list(group))
        for member in self.groups[group].values():
            self._queue(member, frame)

    # -- leaving --------------------------------------------------------------

    def _refuse(self, conn, reason, sentence):
        """Tell a node why it cannot join, then close once that is sent."""
        log.warning("refused  %s: %s (%s)", conn.where, reason, sentence)
        conn.refused = True
        conn.refused_at = time.monotonic()
        self._queue(conn, sysm_frame(UNKNOWN_ADDR, SYSM_REFUSED, reason, sentence))

    def _drop(self, conn, reason):
        """Close a connection; if it was in a group, tell the others."""
        if conn.closed:
            return
        conn.closed = True
        self._connections.discard(conn)
        self._want_flush.discard(conn)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        conn.pending = []
        if conn.group is not None:
            del self.groups[conn.group][conn.addr]
            log.info("left     %s: %s (%s)", conn.group, conn.name, reason)
            self._send_peers(conn.group)
        elif reason and not conn.refused:
            log.info("closed   %s (%s)", conn.where, reason)

    def _drop_silent(self, now):
        for conn in list(self._connections):
            if conn.refused:
                if now - conn.refused_at > 2.0:
                    self._drop(conn, None)          # it never read its refusal
            elif conn.group is None:
                if now - conn.connected_at > self.auth_timeout:
                    self._drop(conn, "did not ask to join within {:g} s".format(self.auth_timeout))
            elif now - conn.last_heard > self.liveness_timeout:
                self._drop(conn, "timed out: silent for {:g} s".format(self.liveness_timeout))

    def _shut_down(self):
        for conn in list(self._connections):
            self._drop(conn, "relay stopped")
        for sock in (self._listener, self._wake_recv, self._wake_send):
            if sock is not None:
                sock.close()
        self._listener = self._wake_recv = self._wake_send = None
        if self._selector is not None:
            self._selector.close()
            self._selector = None

    # -- small helpers --------------------------------------------------------

    def _peer_list(self, group):
        return [(c.name, addr) for addr, c in self.groups[group].items()]

    def _choose_name(self, members):
        taken = {c.name for c in members.values()}
        for name in self.names:
            if name not in taken:
                return name
        number = 2
        while True:     # ends: a group holds at most 254 names
            for name in self.names:
                candidate = name + str(number)
                if candidate not in taken and not name_problem(candidate):
                    return candidate
            number += 1

    def _drain_wake_socket(self):
        try:
            self._wake_recv.recv(512)
        except OSError:
            pass

    def _log_summary(self):
        for group, members in self.groups.items():
            if members:
                log.info("group %s: %d connected: %s", group, len(members),
                         ", ".join(c.name for c in members.values()))


class _Connection:
    """What the relay knows about one connected socket."""

    def __init__(self, sock, address, reader):
        self.sock = sock
        self.where = _format_address(address)
        self.reader = reader
        self.name = None
        self.group = None            # set once AUTH is accepted
        self.addr = UNKNOWN_ADDR
        self.pending = []            # bytes waiting to be sent
        self.pending_size = 0
        self.waiting_to_write = False
        self.connected_at = self.last_heard = time.monotonic()
        self.refused = False
        self.refused_at = 0.0
        self.doomed = False          # to be dropped at the end of this turn
        self.closed = False

    def __str__(self):
        return "{} ({})".format(self.name, self.where) if self.name else self.where


def _send_some(sock, data):
    """Send what ``sock`` takes now: (bytes sent, None), or (0, why) if the
    connection is broken."""
    try:
        return sock.send(data), None
    except (BlockingIOError, InterruptedError):
        return 0, None
    except OSError as exc:
        return 0, "connection lost ({})".format(exc.strerror or exc)


def _receive_buffer():
    # One buffer, reused by every read. recv() would allocate _RECV_SIZE
    # bytes per call, and the C library may map and unmap that much memory
    # each time: three system calls more per frame.
    return memoryview(bytearray(_RECV_SIZE))


def _listen(host, port):
    """Open the listening socket: all interfaces, IPv6 too where possible."""
    try:
        if host:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            return socket.create_server((host, port), family=family)
        if socket.has_dualstack_ipv6():
            try:
                return socket.create_server(("", port), family=socket.AF_INET6,
                                            dualstack_ipv6=True)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise
        return socket.create_server(("", port))
    except socket.gaierror:
        raise RelayError('cannot listen on "{}": no such address on this computer'.format(host))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise RelayError("port {} is already in use. Is a relay already running? Stop it, "
                             "or choose another port with -p.".format(port))
        raise RelayError("cannot listen on port {}: {}".format(port, exc.strerror or exc))


def _fit_to_open_file_limit(wanted):
    """Keep the connection cap below what the OS lets this process open."""
    try:
        import resource
    except ImportError:              # Windows: no such limit to fit
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
# Command line
# ---------------------------------------------------------------------------

def main(argv=None):
    """Run the relay from the command line. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="nethelper.py",
        description="Run a nethelper relay: games join a group and it passes "
                    "their messages to the others in that group.",
        epilog="Example: python nethelper.py -g pong_game")
    parser.add_argument("-g", "--groups", nargs="+", metavar="GROUP", default=[],
                        help="the groups games may join")
    parser.add_argument("-f", "--file", metavar="FILE",
                        help="read groups from FILE, one per line (# starts a comment)")
    parser.add_argument("-p", "--port", type=int, default=DEFAULT_PORT,
                        help="TCP port to listen on (default %(default)s)")
    parser.add_argument("-i", "--interface", metavar="ADDRESS",
                        help="listen on this address only (default: all interfaces)")
    parser.add_argument("-n", "--names", metavar="FILE",
                        help="names to give nodes that ask for one, one per line")
    parser.add_argument("--max-peers", type=int, default=MAX_NODES_PER_GROUP, metavar="N",
                        help="most nodes in one group (default %(default)s)")
    parser.add_argument("--max-connections", type=int, default=1000, metavar="N",
                        help="most connections at once (default %(default)s)")
    parser.add_argument("--max-frame-size", type=int, default=DEFAULT_MAX_FRAME_SIZE,
                        metavar="BYTES", help="largest frame accepted (default %(default)s)")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="only report problems, not joins, leaves and summaries")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="also report ignored frames")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("the port must be a number from 0 to 65535")

    try:
        groups = list(args.groups)
        if args.file:
            groups += _read_list(args.file, "groups file")
        names = _read_list(args.names, "names file") if args.names else None
        for name in names or ():
            if name_problem(name):
                raise RelayError("names file {}: cannot hand out {!r}. {}".format(
                    args.names, name, name_problem(name)))
        if not groups:
            raise RelayError("no groups: name some with -g (e.g. -g pong_game) or -f FILE")
        groups = list(dict.fromkeys(groups))    # drop repeats, keep order
        relay = Relay(groups, host=args.interface, port=args.port, names=names,
                      max_peers=args.max_peers, max_connections=args.max_connections,
                      max_frame_size=args.max_frame_size)
    except (RelayError, ValueError) as exc:
        print("Error:", exc, file=sys.stderr)
        return 1

    try:
        relay.start()           # bind first, so that the banner shows the real port
    except RelayError as exc:
        print("Error:", exc, file=sys.stderr)
        return 1
    print("Starting Server")
    print("  Interface:", args.interface or "ALL")
    print("  Port:     ", relay.port)
    print("  Groups:   ", ", ".join(groups))
    if names:
        print("  Names:     {} from {}".format(len(names), args.names))
    print("Server listening", flush=True)
    if not args.interface:
        _print_lan_addresses()

    logging.basicConfig(stream=sys.stdout, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        level=logging.WARNING if args.quiet else
                        logging.DEBUG if args.verbose else logging.INFO)
    if args.quiet:
        relay.summary_interval = float("inf")
    _stop_on_sigterm()
    try:
        relay.serve_forever()
    except KeyboardInterrupt:
        pass
    print("Server stopped. Goodbye!", flush=True)
    return 0


def _read_list(path, what):
    """Lines of a file, without blanks, surrounding spaces or # comments."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = [line.split("#", 1)[0].strip() for line in file]
    except (OSError, UnicodeDecodeError) as exc:
        raise RelayError("cannot read {} {}: {}".format(what, path, getattr(exc, "strerror", None) or exc))
    items = [line for line in lines if line]
    if not items:
        raise RelayError("{} {} has nothing in it".format(what, path))
    return items


def _print_lan_addresses():
    addresses = _lan_addresses()
    if addresses:
        print("Players on other computers: set SERVER_IP to", " or ".join(addresses))
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


if __name__ == "__main__":
    sys.exit(main())
