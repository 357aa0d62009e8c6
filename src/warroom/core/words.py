"""The house style of a word with its meaning: a StrEnum whose members carry `meaning`.

A member compares equal to its text (`GuardrailStatus.BREACH == "breach"`), so what is
stored, published as JSON or written by an older warroom reads back as the same word.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class Word(StrEnum):
    meaning: str

    def __new__(cls, value: str, meaning: str = "") -> Self:  # the default lets a type checker take `Word("ok")`: a look-up by text
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member
