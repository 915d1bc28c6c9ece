"""IQM's channel properties, as far as feedback routing needs them, in protobuf wire format.

IQM's client 36 learns which qubits can feed measurement results to each other's ``cc_prx``
(``IQMClient.get_feedback_groups()``) from
``GET quantum-computers/{qc}/artifacts/channel-properties``, a protobuf
``ChannelPropertyDictionary`` (``Accept: application/protobuf``): one entry per control channel,
named ``<component>__<channel>``, whose AWG properties list the readout sources it can take fast
feedback from. All qubits that list the same source form one feedback group.

This module encodes the few fields that matter (the server's side) and decodes them (the client's
side) with a small hand-written codec of the protobuf wire format, so neither side needs the
``protobuf`` package. Field numbers are those of IQM's ``channel_properties.proto``:

- ``ChannelPropertyDictionary``: 1 ``channel_property_mapping`` (map string → entry);
- ``ChannelPropertyEntry``: 1 ``awg`` (``AWGProperties``), 2 ``ro`` (readout, ignored here);
- ``AWGProperties``: 1 ``channel_properties``, 3 ``fast_feedback_sources`` (repeated string),
  4 ``local_oscillator`` and 5 ``mixer_correction`` (bool);
- ``ChannelProperties``: 1 ``sampling_rate``, 2 ``instruction_duration_granularity``,
  3 ``instruction_duration_min`` (double), 4 ``compatible_instructions`` (repeated string).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence

#: Media type of the answer.
PROTOBUF_MEDIA_TYPE = "application/protobuf"
#: Instruction types a drive channel accepts (names client 36 knows; an unknown one fails it).
DRIVE_INSTRUCTIONS = ("IQPulse", "VirtualRZ", "Wait", "ConditionalInstruction")
#: Figures of a simulated drive channel: 2 GS/s, durations in multiples of 16 samples.
SAMPLING_RATE = 2.0e9
GRANULARITY_SAMPLES = 16.0

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class ChannelPropertiesError(ValueError):
    """The bytes are not a channel-property dictionary."""


# ------------------------------------------------------------------------------------ encoding


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    tag = _varint(number << 3 | wire_type)
    if wire_type == _LENGTH:
        return tag + _varint(len(payload)) + payload
    return tag + payload


def _string(number: int, text: str) -> bytes:
    return _field(number, _LENGTH, text.encode("utf-8"))


def _double(number: int, value: float) -> bytes:
    return _field(number, _FIXED64, struct.pack("<d", value))


def feedback_source(group_index: int) -> str:
    """The readout source shared by the qubits of one feedback group (a probe line)."""
    return f"PL-{group_index + 1}__readout"


def encode_feedback_channels(
    qubits: Sequence[str], feedback_groups: Sequence[Iterable[str]]
) -> bytes:
    """A ``ChannelPropertyDictionary`` with one drive channel per qubit, ``<qubit>__drive.awg``.

    Each qubit's channel lists the source of every group it belongs to, so that client 36's
    ``get_feedback_groups()`` finds exactly ``feedback_groups``.

    Args:
        qubits: The qubits, in the order their channels are written.
        feedback_groups: Groups of qubit names.

    Returns:
        The serialised message.
    """
    groups = [frozenset(g) for g in feedback_groups]
    channel = (
        _double(1, SAMPLING_RATE)
        + _double(2, GRANULARITY_SAMPLES)
        + _double(3, GRANULARITY_SAMPLES)
        + b"".join(_string(4, name) for name in DRIVE_INSTRUCTIONS)
    )
    out = bytearray()
    for qubit in qubits:
        sources = [feedback_source(i) for i, group in enumerate(groups) if qubit in group]
        awg = (
            _field(1, _LENGTH, channel)
            + b"".join(_string(3, source) for source in sources)
            + _field(4, _VARINT, _varint(1))  # local_oscillator
        )
        entry = _field(1, _LENGTH, awg)
        item = _string(1, f"{qubit}__drive.awg") + _field(2, _LENGTH, entry)
        out += _field(1, _LENGTH, item)
    return bytes(out)


# ------------------------------------------------------------------------------------ decoding


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ChannelPropertiesError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ChannelPropertiesError("varint longer than 64 bits")


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """``(field number, wire type, value)`` of every field of one message, unknown ones too."""
    position = 0
    while position < len(data):
        tag, position = _read_varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        value: bytes | int
        if wire_type == _VARINT:
            value, position = _read_varint(data, position)
        elif wire_type == _FIXED64:
            value, position = data[position : position + 8], position + 8
        elif wire_type == _FIXED32:
            value, position = data[position : position + 4], position + 4
        elif wire_type == _LENGTH:
            length, position = _read_varint(data, position)
            value, position = data[position : position + length], position + length
        else:
            raise ChannelPropertiesError(f"unsupported protobuf wire type {wire_type}")
        if position > len(data):
            raise ChannelPropertiesError("truncated field")
        yield number, wire_type, value


def _submessages(data: bytes, number: int) -> Iterator[bytes]:
    for field_number, wire_type, value in _fields(data):
        if field_number == number and wire_type == _LENGTH and isinstance(value, bytes):
            yield value


def decode_feedback_sources(data: bytes) -> dict[str, tuple[str, ...]]:
    """The fast-feedback sources of every AWG channel of a ``ChannelPropertyDictionary``.

    Returns:
        Channel name → the sources it can take feedback from (readout channels are left out).

    Raises:
        ChannelPropertiesError: The bytes are not such a message.
    """
    out: dict[str, tuple[str, ...]] = {}
    try:
        for item in _submessages(data, 1):
            key = b"".join(
                v for n, w, v in _fields(item) if n == 1 and w == _LENGTH and isinstance(v, bytes)
            ).decode("utf-8")
            for entry in _submessages(item, 2):
                for awg in _submessages(entry, 1):
                    out[key] = tuple(s.decode("utf-8") for s in _submessages(awg, 3))
    except UnicodeDecodeError as error:
        raise ChannelPropertiesError(f"a name is not UTF-8: {error}") from None
    return out


def feedback_groups_from_sources(
    sources: Mapping[str, Sequence[str]], qubits: Iterable[str]
) -> tuple[frozenset[str], ...]:
    """Feedback groups as client 36 derives them: the qubits that share a source, largest first.

    Args:
        sources: Channel name → fast-feedback sources (:func:`decode_feedback_sources`).
        qubits: The quantum computer's qubits; channels of other components are ignored.
    """
    known = set(qubits)
    by_source: dict[str, set[str]] = {}
    for channel, names in sources.items():
        qubit = channel.split("__")[0]  # IQM's naming convention: <component>__<channel>
        if qubit not in known:
            continue
        for source in names:
            by_source.setdefault(source, set()).add(qubit)
    unique = {frozenset(group) for group in by_source.values()}
    return tuple(sorted(unique, key=lambda g: (-len(g), sorted(g))))
