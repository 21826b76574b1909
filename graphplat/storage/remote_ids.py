"""A RemoteGraph's copy of a served string-id dictionary.

The primary of partition 0 is the one authority of every ``id_type: string`` dictionary
while a store is served (:class:`~graphplat.storage.server.GraphPartitionServicer`
``AddIdStrings``): it gives unknown strings the next ids under one lock and appends them
to ``ids/<ntype>.added`` (fsynced) before it answers, so two clients adding the same
string get the same id and a restart keeps them. A client holds the prefix ``0..n-1`` of
the dictionary it has seen and streams the rest from partition 0 (any of its servers)
when it meets a string or an id it does not know, so nothing has to fit one message.
"""
from __future__ import annotations

import threading
from typing import Iterable

import numpy as np
import pandas as pd

from graphplat.storage.client import PartitionClient
from graphplat.storage.id_dictionary import IdDictionary, check_strings, chunk_bounds

__all__ = ["RemoteIdDictionary", "ADD_CHUNK_BYTES"]

#: strings per AddIdStrings call are cut into pieces of about this many bytes
ADD_CHUNK_BYTES = 256 << 10


class RemoteIdDictionary(IdDictionary):
    """The dictionary of ``ntype`` served by partition 0 (``client``), fetched on demand."""

    def __init__(self, ntype: str, client: PartitionClient):
        super().__init__(ntype, [])
        self._client = client
        self._fetch_lock = threading.Lock()

    def refresh(self) -> int:
        """Fetch the strings of ids from ``len(self)`` on. Returns how many were new."""
        with self._fetch_lock:
            new = self._client.id_strings(self.ntype, len(self))
            self._extend(np.asarray(new, dtype=object))
        return len(new)

    def get_or_add(self, strings: Iterable[str]) -> np.ndarray:
        """int64 ids of ``strings``; the authority gives unknown ones ids (durably, the same
        id to every client adding the same string)."""
        arr = check_strings(self.ntype, list(strings) if not isinstance(strings, np.ndarray) else strings)
        got = self.to_internal(arr, missing="ignore")
        if (got < 0).any():
            new = pd.unique(arr[got < 0]).astype(object)
            bounds = chunk_bounds(new, ADD_CHUNK_BYTES)
            for a, b in zip(bounds[:-1], bounds[1:]):
                self._client.add_id_strings(self.ntype, new[a:b].tolist())
            got = self.to_internal(arr)  # fetches the new strings (and any others')
        return got
