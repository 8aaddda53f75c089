"""Every message of the recorded Go traffic decodes and re-encodes to Go's exact bytes."""

from __future__ import annotations

import json

import pytest
from protocol_vectors import Vector, all_vectors, dialog_pairs, load_vectors

from ari_proxy import UnknownEvent, event_type
from ari_proxy.api import decode_event
from ari_proxy.ari.models import StasisStart
from ari_proxy.protocol import (
    ProtocolError,
    Request,
    RequestClass,
    Subjects,
    decode_announcement,
    decode_request,
    decode_response,
    encode_announcement,
    encode_request,
    encode_response,
    go_escape,
    stamp_event,
    with_dialog,
)

SUBJECTS = Subjects()
# The deliberately non-Go requests of the vectors README: the body `{}` and a non-JSON body.
EMPTY_OBJECT_BODY = {("nats", 633)}
NON_JSON_BODY = {("nats", 673), ("rabbitmq", 48)}
# Null keys sent by hand to a unicast subject (no Go client sends a null key).
NULL_KEY_BY_HAND = {("nats", 9), ("nats", 635)}


def test_vector_files_hold_the_documented_counts() -> None:
    # The README's message counts, so a truncated or swapped file fails loudly.
    def count(bus: str, role: str) -> int:
        return sum(v.role == role for v in load_vectors(bus))

    assert len(load_vectors("nats")) == 843
    assert (count("nats", "request"), count("nats", "reply")) == (249, 248)
    assert (count("nats", "event"), count("nats", "dialogevent")) == (189, 153)
    assert len(load_vectors("rabbitmq")) == 72
    assert (count("rabbitmq", "request"), count("rabbitmq", "reply")) == (16, 15)
    assert (count("rabbitmq", "event"), count("rabbitmq", "dialogevent")) == (30, 9)


def test_request_round_trips_to_go_bytes(request_vector: Vector) -> None:
    where = (request_vector.bus, request_vector.seq)
    if where in NON_JSON_BODY:
        with pytest.raises(ProtocolError, match="not JSON"):
            decode_request(request_vector.wire)
        return
    request = decode_request(request_vector.wire)
    if where in EMPTY_OBJECT_BODY:
        # Go reads `{}` as kind "" with a nil key (and answers "Not implemented").
        assert request == Request(kind="", key=None)
        assert encode_request(request) == b'{"kind":"","key":null}'
        return
    assert go_escape(encode_request(request)) == request_vector.wire


def test_request_subject_follows_the_go_subject_rule(request_vector: Vector) -> None:
    if request_vector.role == "ping":
        assert request_vector.subject == SUBJECTS.ping
        return
    request = None
    if (request_vector.bus, request_vector.seq) not in NON_JSON_BODY:
        request = decode_request(request_vector.wire)
    if request is None or request.key is None:
        # Hand-sent bodies: the recorder chose the subject, no key did.
        assert (request_vector.bus, request_vector.seq) in (
            NON_JSON_BODY | EMPTY_OBJECT_BODY | NULL_KEY_BY_HAND
        )
        return
    cls = RequestClass(request_vector.subject.split(".")[1])
    key = request.key
    assert request_vector.subject == SUBJECTS.request(cls, key.app, key.node)


def test_reply_round_trips_to_go_bytes(reply_vector: Vector) -> None:
    response = decode_response(reply_vector.wire)
    assert go_escape(encode_response(response)) == reply_vector.wire
    assert response.ok == (reply_vector.body["error"] == "")
    assert len(response.keys) == len(reply_vector.body.get("keys", []))


def test_announcement_round_trips(announce_vector: Vector) -> None:
    announcement = decode_announcement(announce_vector.wire)
    assert encode_announcement(announcement) == announce_vector.wire
    assert announce_vector.subject == SUBJECTS.announce


def test_event_is_already_stamped(event_vector: Vector) -> None:
    # Asterisk 22 stamps application and asterisk_id, so the fast path returns the same bytes.
    assert stamp_event(event_vector.wire, "other-app", "other-node") is event_vector.wire
    body = event_vector.body
    assert event_vector.subject == SUBJECTS.event(body["application"], body["asterisk_id"])


def test_event_decodes_to_its_own_type(event_vector: Vector) -> None:
    # The Go server writes absent objects as zero values; every one still decodes to its type.
    event = decode_event(event_vector.wire)
    assert not isinstance(event, UnknownEvent)
    assert event_type(event) == event_vector.body["type"]
    assert event.asterisk_id == event_vector.body["asterisk_id"]
    if isinstance(event, StasisStart):
        assert event.channel.id == event_vector.body["channel"]["id"]
        assert event.replace_channel is None  # Go's all-zero replace_channel


def test_dialog_copy_is_the_event_plus_dialog(dialog_pair: tuple[Vector, Vector]) -> None:
    event, copy = dialog_pair
    dialog = copy.body["dialog"]
    assert copy.subject == SUBJECTS.dialog_event(dialog)
    produced = with_dialog(event.wire, dialog)
    assert json.loads(produced) == copy.body
    # Go puts dialog right after application; we do the same, so the bytes match too.
    assert list(copy.body)[:2] == ["application", "dialog"]
    assert produced == copy.wire


def test_every_dialog_copy_has_its_event() -> None:
    copies = [v for v in all_vectors() if v.role == "dialogevent"]
    assert len(dialog_pairs()) == len(copies) == 162
