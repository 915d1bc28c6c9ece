"""A finished job's measurements as the server keeps them: eight bits to a byte.

A retained result is held for as long as the retention policy allows, so its size decides how
many results fit the byte bound: kept one byte per bit (as the simulator writes them), 100
circuits × 100,000 shots × 20 qubits take 200 MB; packed, 25 MB. :class:`PackedCircuit` holds
one circuit's keys packed (``numpy.packbits``, the encoding of the packed wire format, so a
packed answer is only base64 of what is kept) and is a read-only mapping from key to the
``uint8`` array of shape ``[shots, qubits]``, unpacked when a key is read: a streamed JSON answer
holds one key's array at a time, never the whole result.

A key whose values are not all 0 or 1 is kept as it is (packing would turn every non-zero
value into a 1).

:meth:`PackedCircuit.stored` and :meth:`PackedCircuit.from_stored` give and take the kept form
itself, so a state dir stores (and reloads) a result without unpacking it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from cirq_iqm_ext.wire.packed import pack_bits, packed_entry


class PackedCircuit(Mapping[str, np.ndarray]):
    """One circuit's measurements, key -> ``[shots, qubits]`` bits, kept packed.

    Args:
        measurements: Key -> 0/1 values of shape ``[shots, qubits]`` (an array or nested lists).
    """

    def __init__(self, measurements: Mapping[str, Any]):
        # key -> (shape, packed bytes as a uint8 array) or, for values that are not bits, the
        # array itself.
        self._keys: dict[str, tuple[tuple[int, int], np.ndarray] | np.ndarray] = {}
        for key, shots in measurements.items():
            array = np.asarray(shots)
            if array.ndim != 2:
                array = array.reshape(len(array), -1)
            if array.size and (array.dtype.kind not in "biu" or array.min() < 0 or array.max() > 1):
                self._keys[key] = array.copy()
            else:
                shape = (int(array.shape[0]), int(array.shape[1]))
                self._keys[key] = (shape, np.packbits(array.astype(np.uint8), axis=None))

    def __getitem__(self, key: str) -> np.ndarray:
        entry = self._keys[key]
        if isinstance(entry, np.ndarray):
            return entry
        (shots, width), packed = entry
        return np.unpackbits(packed, count=shots * width).reshape(shots, width)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        """Bytes the measurements take as kept."""
        return sum(
            entry.nbytes if isinstance(entry, np.ndarray) else entry[1].nbytes
            for entry in self._keys.values()
        )

    def stored(self) -> list[tuple[str, np.ndarray, tuple[int, int] | None]]:
        """Each key as kept: ``(key, packed bytes, shape)``, or ``(key, array, None)`` for values
        that are not bits."""
        return [
            (key, entry, None) if isinstance(entry, np.ndarray) else (key, entry[1], entry[0])
            for key, entry in self._keys.items()
        ]

    @classmethod
    def from_stored(
        cls, entries: Iterable[tuple[str, np.ndarray, tuple[int, int] | None]]
    ) -> PackedCircuit:
        """The circuit :meth:`stored` gave.

        Raises:
            ValueError: Packed bytes do not hold their shape's bits.
        """
        circuit = cls({})
        for key, array, shape in entries:
            if shape is None:
                circuit._keys[key] = np.asarray(array)
                continue
            shots, width = (int(n) for n in shape)
            packed = np.asarray(array, dtype=np.uint8).reshape(-1)
            if shots < 0 or width < 0 or len(packed) != -(-shots * width // 8):
                raise ValueError(f"{len(packed)} bytes do not hold {shots} x {width} bits")
            circuit._keys[key] = ((shots, width), packed)
        return circuit

    def wire(self, key: str) -> dict[str, Any]:
        """One key in the packed wire format (:func:`~cirq_iqm_ext.wire.packed.pack_bits`'s)."""
        entry = self._keys[key]
        if isinstance(entry, np.ndarray):
            return pack_bits(entry)
        shape, packed = entry
        return packed_entry(shape, packed.tobytes())


__all__ = ["PackedCircuit"]
