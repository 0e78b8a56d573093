"""The frame codec on its own: bytes in, bytes out, no sockets."""
import json
import struct

import pytest

import nethelper
from nethelper import FrameReader, ProtocolError, encode_frame


def header(length, version=b"020", dest=0, sender=255, frame_type=1, meta=0):
    return struct.pack(">I3sBBBB", length, version, dest, sender, frame_type, meta)


def test_encode_frame_matches_the_documented_layout():
    frame = encode_frame(nethelper.DATA, 3, 7, b'[{"x":1}]')
    assert frame[:4] == (11 + 9).to_bytes(4, "big")    # length includes the header
    assert frame[4:7] == b"020"
    assert frame[7:11] == bytes([3, 7, 2, 0])           # dest, sender, type, meta
    assert frame[11:] == b'[{"x":1}]'


def test_auth_frame_is_what_an_original_relay_expects():
    frame = nethelper.auth_frame("Player1", "pong_game")
    assert frame[7] == 0 and frame[8] == 255 and frame[9] == 1
    assert json.loads(frame[11:]) == {"name": "Player1", "group": "pong_game"}


def test_heart_frame_carries_json_null_like_original_nodes():
    frame = nethelper.heart_frame(4)
    assert frame == header(15, dest=0, sender=4, frame_type=3) + b"null"


def test_reader_returns_frames_fed_in_one_piece():
    reader = FrameReader()
    reader.feed(encode_frame(2, 1, 2, b"[]") + encode_frame(3, 0, 2, b"null"))
    frames = list(reader)
    assert [(f.type, f.dest, f.sender) for f in frames] == [(2, 1, 2), (3, 0, 2)]
    assert frames[0].payload == b"[]"
    assert reader.buffered() == 0


def test_reader_reassembles_a_frame_fed_one_byte_at_a_time():
    stream = encode_frame(2, 255, 1, b'[{"title":"a","content":1,"queue":false}]') * 2
    reader = FrameReader()
    frames = []
    for i in range(len(stream)):
        reader.feed(stream[i:i + 1])
        frames.extend(reader)
    assert len(frames) == 2
    assert frames[1].raw == stream[len(stream) // 2:]


def test_reader_keeps_a_partial_frame_until_the_rest_arrives():
    frame = encode_frame(2, 1, 2, b"[1,2,3]")
    reader = FrameReader()
    reader.feed(frame[:13])
    assert list(reader) == []
    assert reader.buffered() == 13
    reader.feed(frame[13:])
    assert [f.raw for f in reader] == [frame]


def test_a_header_only_frame_is_valid():
    reader = FrameReader()
    reader.feed(header(11, frame_type=3))
    (frame,) = list(reader)
    assert frame.payload == b""


@pytest.mark.parametrize("bad, code", [
    (header(20, version=b"019"), "version"),
    (header(5), "bad_frame"),
    (header(0), "bad_frame"),
])
def test_reader_rejects_impossible_headers(bad, code):
    reader = FrameReader()
    reader.feed(bad)
    with pytest.raises(ProtocolError) as caught:
        list(reader)
    assert caught.value.code == code


def test_reader_rejects_an_oversized_frame_before_its_body_arrives():
    reader = FrameReader(max_frame_size=1000)
    reader.feed(header(1001))
    with pytest.raises(ProtocolError, match="1001 bytes"):
        reader.next_frame()


def test_a_long_backlog_is_read_without_recursion():
    frame = encode_frame(2, 1, 2, b'[{"title":"t","content":0,"queue":true}]')
    reader = FrameReader()
    reader.feed(frame * 100_000)
    assert sum(1 for _ in reader) == 100_000


def test_encode_json_refuses_what_json_cannot_carry():
    with pytest.raises(TypeError):
        nethelper.encode_json({1, 2})
    with pytest.raises(ValueError):
        nethelper.encode_json(float("nan"))
    assert nethelper.encode_json((1, 2)) == b"[1,2]"     # tuples become lists


@pytest.mark.parametrize("payload", [b"{", b"\xff\xfe", b'"text"', b"[1]", b'{"name": 1, "group": "g"}',
                                     b'{"name": "a"}', b'{"name": "a", "group": null}'])
def test_parse_auth_rejects_malformed_payloads(payload):
    with pytest.raises(ProtocolError):
        nethelper.parse_auth(payload)


def test_parse_auth_accepts_a_good_payload():
    assert nethelper.parse_auth(b'{"name": "", "group": "g"}') == ("", "g")


def test_parse_messages_skips_bad_entries_and_keeps_good_ones():
    payload = b'[{"title": "a", "content": [1], "queue": true}, 7, {"content": 1}, {"title": "b"}]'
    assert nethelper.parse_messages(payload) == [("a", [1], True), ("b", None, False)]
    with pytest.raises(ProtocolError):
        nethelper.parse_messages(b'{"title": "a"}')


def test_parse_peers_checks_names_and_addresses():
    assert nethelper.parse_peers(b'[{"name": "P1", "addr": 1}, {"name": "P2", "addr": 2}]') == [
        ("P1", 1), ("P2", 2)]
    for bad in (b'[{"name": "P1", "addr": 0}]', b'[{"name": 5, "addr": 1}]', b'{}'):
        with pytest.raises(ProtocolError):
            nethelper.parse_peers(bad)


def test_peers_and_sysm_frames_round_trip_through_the_parsers():
    reader = FrameReader()
    reader.feed(nethelper.peers_frame(255, [("P1", 1), ("P2", 2)]))
    reader.feed(nethelper.sysm_frame(255, 1, "name_taken", "The name is taken."))
    peers, sysm = list(reader)
    assert (peers.type, peers.dest, peers.sender) == (4, 255, 0)
    assert nethelper.parse_peers(peers.payload) == [("P1", 1), ("P2", 2)]
    assert nethelper.parse_typed(sysm.payload) == {
        "type": 1, "msg": "name_taken", "data": "The name is taken."}


def test_next_run_takes_consecutive_frames_with_the_same_type_sender_and_dest():
    a1, a2 = encode_frame(2, 3, 1, b"[1]"), encode_frame(2, 3, 1, b"[2]")
    other_dest = encode_frame(2, 255, 1, b"[3]")
    heart = encode_frame(3, 0, 1, b"null")
    reader = FrameReader()
    reader.feed(a1 + a2 + other_dest + heart + a1[:5])
    assert reader.next_run(2, 1) == (3, a1 + a2)
    assert reader.next_run(2, 1) == (255, other_dest)
    assert reader.next_run(2, 1) is None                  # a HEART is next: not a DATA run
    assert reader.next_frame().raw == heart
    assert reader.next_run(2, 1) is None                  # only part of a frame so far
    assert reader.buffered() == 5


def test_next_run_ignores_frames_from_another_sender():
    forged = encode_frame(2, 3, 9, b"[1]")
    reader = FrameReader()
    reader.feed(forged)
    assert reader.next_run(2, 1) is None
    assert reader.next_frame().sender == 9


def test_next_run_checks_headers_too():
    reader = FrameReader()
    reader.feed(encode_frame(2, 3, 1, b"[1]") + header(4))
    assert reader.next_run(2, 1)[1] == encode_frame(2, 3, 1, b"[1]")
    with pytest.raises(ProtocolError):
        reader.next_run(2, 1)
