from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Order:
    order_id: str
    customer: str
    amount: float

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Order:
        return cls(**json.loads(data))

    def row(self) -> dict[str, object]:
        return asdict(self)
