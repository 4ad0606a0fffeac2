"""``with X() as x:`` for the kit's started things (a stack, a pair of services): ``start()`` on entry,
``stop()`` on exit, and ``stop()`` too when ``start()`` itself fails halfway (nothing is left running)."""

from __future__ import annotations

from typing import Self


class Started:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
