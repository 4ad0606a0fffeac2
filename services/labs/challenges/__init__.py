"""The challenges, in the chapter's order. Each module exposes ``start``, ``check`` and ``solve``.

``start(s)`` puts the stack where the challenge begins (doing earlier challenges' reference solutions
when their results are missing); ``check(s)`` returns a message when the work does what the challenge
asks and raises :class:`NotYet` with what is missing otherwise; ``solve(s)`` applies the reference
solution from ``labs/<N>-<slug>/solution``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


class NotYet(Exception):
    """The challenge is not done yet; the message says what is missing and what to look at."""


@dataclass(frozen=True)
class Challenge:
    number: int
    slug: str  # folder labs/<number>-<slug>
    title: str
    module: str

    @property
    def folder(self) -> str:
        return f"{self.number}-{self.slug}"

    def code(self) -> ModuleType:
        return importlib.import_module(f"services.labs.challenges.{self.module}")


CHALLENGES: tuple[Challenge, ...] = (
    Challenge(0, "architecture", "The architecture, mapped to your laptop", "architecture"),
    Challenge(1, "kmeans", "Train k-means with SQL and register it", "kmeans"),
    Challenge(2, "endpoint", "Create the prediction endpoint", "endpoint"),
    Challenge(3, "deploy", "Deploy your k-means to the endpoint", "deploy"),
    Challenge(4, "processor", "Complete the inference processing service", "processor"),
    Challenge(5, "custom-model", "Train a custom model", "custom_model"),
    Challenge(6, "deploy-custom", "Deploy the custom model", "deploy_custom"),
    Challenge(7, "detector", "Use the custom model in the streaming detector", "detector"),
)


def get(number: int) -> Challenge:
    for c in CHALLENGES:
        if c.number == number:
            return c
    raise KeyError(number)
