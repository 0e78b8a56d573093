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
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time

# One plain sentence instead of a traceback further down (Python 3.6 and 3.7
# lack socket.create_server, for one). 3.8 is what the Mu editor bundles.
if sys.version_info < (3, 8):
    sys.exit("nethelper needs Python 3.8 or newer, but this is Python %d.%d. "
             "Install a newer Python from https://www.python.org" % sys.version_info[:2])

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

class NetNode:
    """A game's connection to a relay.

    Call ``connect()`` once, then ``process_recv()`` and ``process_send()``
    once per frame of your game. Nothing here raises because of the network:
    when something goes wrong, ``connected`` becomes False and ``error`` says
    why in plain words (``error_code`` gives a short machine-readable reason,
    such as ``"name_taken"`` or ``"no_relay"``).
    """

    def __init__(self):
        self.name = ""
        self.group = ""
        self.error = None
        self.error_code = None
        self._sock = None
        self._joined = False
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
        then says why. With ``wait=False`` it returns True as soon as the
        request is sent, and the answer arrives through ``process_recv()``.
        Calling it again, even after a False, starts afresh.
        """
        if not isinstance(name, str) or not isinstance(group, str):
            raise TypeError("connect() needs the name and the group as strings")
        self._close()
        self._reset_session()
        self.name, self.group = name, group
        self.error = self.error_code = None
        port = DEFAULT_PORT if port is None else int(port)
        self._where = "{}:{}".format(host, port)
        if name and name_problem(name):
            return self._fail(BAD_REQUEST, name_problem(name))
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
            self._sock.setblocking(False)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except socket.gaierror:
            return self._fail(BAD_ADDRESS, 'Cannot find a computer called "{}". '
                              "Check SERVER_IP.".format(host))
        except ConnectionRefusedError:
            return self._fail(NO_RELAY, "No relay is running at {}. Start one with: "
                              "python nethelper.py -g {}".format(self._where, group or "<group>"))
        except socket.timeout:
            return self._fail(TIMEOUT, "No answer from {} within {} s. Check SERVER_IP, and "
                              "that the relay's firewall lets TCP port {} in.".format(
                                  self._where, timeout, port))
        except OSError as exc:
            return self._fail(NO_RELAY, "Cannot reach {}: {}".format(self._where, exc.strerror or exc))
        self._outgoing += auth_frame(name, group)
        self._flush()
        if not wait:
            return self._sock is not None
        return self._wait_until_joined(timeout)

    @property
    def connected(self):
        """True while we are a member of the group."""
        return self._joined

    def is_connected(self):
        """Same as the ``connected`` attribute."""
        return self._joined

    def disconnect(self):
        """Leave the group and close the connection."""
        if self._sock is not None:
            self._outgoing += req_frame(self._my_addr, REQ_LEAVE)
            self._flush()
        self._close()
        self._peers.clear()

    # -- sending and receiving ----------------------------------------------

    def process_send(self):
        """Send everything queued by ``send_msg()``. Call it every frame.

        When there is nothing to send it sends a heartbeat now and then, so
        that the relay knows we are still here.
        """
        if self._sock is None:
            return
        for dest, messages in self._outbox.items():
            self._outgoing += data_frame(dest, self._my_addr, messages)
        self._outbox.clear()
        if not self._outgoing and time.monotonic() - self._last_sent >= HEARTBEAT_INTERVAL:
            self._outgoing += heart_frame(self._my_addr)
        self._flush()

    def process_recv(self):
        """Read everything that has arrived and file the messages. Call it every frame."""
        if self._sock is None:
            return
        ended = None            # why the stream ended, if it did
        try:
            while True:
                size = self._sock.recv_into(self._recv_buffer)
                if not size:
                    ended = "closed"
                    break
                self._reader.feed(self._recv_buffer[:size])
                if size < _SMALL_READ:
                    # A game's frame brings a few hundred bytes: asking again
                    # would only hear "nothing more", at the price of a system
                    # call. A backlog comes in big reads, so it is read on.
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            ended = exc.strerror or str(exc)
        # Read what arrived before the end first: it may say why it ended.
        self._handle_frames()
        if ended and self._sock is not None:
            self._on_connection_ended(ended)

    def send_msg(self, name, title, content, queue=False):
        """Queue a message for the node called ``name`` (or "ALL" for everyone else).

        ``content`` can be anything JSON can carry; it is copied now, so
        changing your variable afterwards does not change the message. With
        ``queue=False`` the receiver keeps only the latest unread message of
        this title; with ``queue=True`` every message is kept in order.
        Returns False if there is no such node (or we are not connected).
        Raises TypeError or ValueError if JSON cannot carry ``content``.
        """
        if not isinstance(title, str):
            raise TypeError("send_msg(): the title must be a string, not {}".format(
                type(title).__name__))
        try:
            encoded = encode_message(title, content, queue)
        except (TypeError, ValueError) as exc:
            raise type(exc)("send_msg(): cannot send {!r}: {}. Send numbers, strings, "
                            "True/False/None, lists and dicts.".format(title, exc)) from None
        dest = ALL_ADDR if name == "ALL" else self._peers.get(name)
        if dest is None or not self._joined:
            return False
        self._outbox.setdefault(dest, []).append(encoded)
        return True

    def available(self, sender, title):
        """How many unread messages called ``title`` came from ``sender``."""
        return len(self._inbox.get((sender, title), ()))

    def get_msg(self, sender, title, clear=True):
        """Return the oldest unread ``title`` message from ``sender``, or None.

        With ``clear=False`` the message stays unread.
        """
        box = self._inbox.get((sender, title))
        if not box:
            return None
        return box.popleft() if clear else box[0]

    def get_all_msgs(self, sender, title, clear=True):
        """Return a list of every unread ``title`` message from ``sender``
        (None if there are none). With ``clear=False`` they stay unread."""
        box = self._inbox.get((sender, title))
        if not box:
            return None
        messages = list(box)
        if clear:
            box.clear()
        return messages

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
        self._reader = FrameReader()
        self._outgoing = bytearray()
        self._outbox = {}                                   # dest addr -> [encoded message]
        self._inbox = collections.defaultdict(collections.deque)   # (sender, title) -> messages
        self._peers = {}                                    # name -> addr, in the relay's order
        self._names = {}                                    # addr -> name
        self._my_addr = UNKNOWN_ADDR
        self._joined = False
        self._last_sent = time.monotonic()
        self._where = ""

    def _wait_until_joined(self, timeout):
        deadline = time.monotonic() + timeout
        while self._sock is not None and not self._joined:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._close()
                return self._fail(TIMEOUT, "The relay at {} did not answer the request to join "
                                  "within {} s.".format(self._where, timeout))
            self._wait_readable(min(remaining, 0.5))
            self.process_recv()
            self._flush()
        return self._joined

    def _wait_readable(self, seconds):
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.select(seconds)

    def _flush(self):
        if self._sock is None or not self._outgoing:
            return
        try:
            sent = self._sock.send(self._outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(LOST, "The connection to the relay was lost ({}).".format(
                exc.strerror or exc))
            return
        del self._outgoing[:sent]
        self._last_sent = time.monotonic()

    def _handle_frames(self):
        try:
            for frame in self._reader:
                if self._sock is None:
                    break           # refused or lost: the rest is moot
                if frame.type == DATA:
                    self._on_data(frame)
                elif frame.type == PEERS:
                    self._on_peers(frame)
                elif frame.type == SYSM:
                    self._on_sysm(frame)
                # other types are not for nodes, and a newer relay may add some
        except ProtocolError as exc:
            self._lose(PROTOCOL, "The relay at {} sent something this node cannot read "
                       "({}).".format(self._where, exc))

    def _on_data(self, frame):
        try:
            messages = parse_messages(frame.payload)
        except ProtocolError as exc:
            # A peer's bad DATA is its own problem: skip it and stay connected.
            log.debug("ignored DATA from address %d: %s", frame.sender, exc)
            return
        sender = self._names.get(frame.sender)
        for title, content, queue in messages:
            box = self._inbox[(sender, title)]
            if not queue:
                box.clear()         # latest wins
            box.append(content)

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
            self._joined = True

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

    def _on_connection_ended(self, how):
        if self._joined and how == "closed":
            self._lose(LOST, "The relay at {} closed the connection (it stopped, or "
                       "dropped this node).".format(self._where))
        elif self._joined:
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
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._joined = False


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
    _make_console_safe()
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
