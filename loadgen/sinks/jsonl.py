"""JSON lines: one ``{"data": <event>, "attributes": {...}}`` per message, so labels survive outside Pub/Sub."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.compute as pc

from loadgen.core import Batch
from loadgen.render import attributes_json, payloads
from loadgen.sinks import SinkError


class JsonlSink:
    def __init__(self, out: str | Path, n_users: int, run_id: str) -> None:
        self.n_users, self.run_id = n_users, run_id
        if str(out) == "-":
            self._fh, self._own = sys.stdout, False
        else:
            try:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                self._fh, self._own = open(out, "a", encoding="utf-8"), True  # noqa: SIM115
            except OSError as exc:
                raise SinkError(f"--out: cannot write {out}: {exc.strerror}") from None

    def send(self, batch: Batch, now: float) -> None:
        if not len(batch):
            return
        lines = pc.binary_join_element_wise(
            '{"data":',
            payloads(batch, self.n_users, now),
            ',"attributes":',
            attributes_json(batch, self.run_id, int(now * 1000)),
            "}\n",
            "",
        )
        self._fh.write("".join(lines.to_pylist()))

    def close(self) -> None:
        self._fh.flush()
        if self._own:
            self._fh.close()
