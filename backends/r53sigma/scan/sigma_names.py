"""pySigma's correlation names without importing pySigma, for the scan's warm start.

A warm ``scan`` runs a compiled run from the plan cache (:mod:`r53sigma.scan.compiledrun`): plain-data
stand-ins of the rules, so that pySigma (0.1-0.4 s of imports) is loaded only when a row needs the
reference engine. The correlation code keys its tables by pySigma's enums and asks ``isinstance`` of
pySigma's condition classes; it takes those names from here instead, and each name stands for the
pySigma one of the same name:

- an enum member here is equal to pySigma's member of the same enum and name, and hashes as it does
  (``enum.Enum`` hashes a member by its name), so a table keyed by either finds the other;
- ``isinstance(x, C)`` holds for C's own instances (the stand-ins subclass C) and for instances of the
  pySigma class named C.
"""
from __future__ import annotations

from typing import Any


class _Member:
    __slots__ = ("enum", "name")

    def __init__(self, enum: str, name: str):
        self.enum, self.name = enum, name

    def __eq__(self, other: Any) -> bool:
        return other is self or (type(other).__name__ == self.enum and getattr(other, "name", None) == self.name)

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:  # pySigma's EnumLowercaseStringMixin: "event_count"
        return self.name.lower()

    def __repr__(self) -> str:
        return f"<{self.enum}.{self.name}>"


class _Enum:
    def __init_subclass__(cls, members: str = "", **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for name in members.split():
            setattr(cls, name, _Member(cls.__name__, name))

    @classmethod
    def named(cls, name: str) -> _Member:
        """The member of a name (as pySigma's ``Enum[name]``)."""
        member = getattr(cls, name.upper(), None)
        if not isinstance(member, _Member):
            raise KeyError(name)
        return member


class SigmaCorrelationType(_Enum, members="EVENT_COUNT VALUE_COUNT TEMPORAL TEMPORAL_ORDERED VALUE_SUM VALUE_AVG "
                                          "VALUE_PERCENTILE VALUE_MEDIAN"):
    pass


class SigmaCorrelationConditionOperator(_Enum, members="LT LTE GT GTE EQ NEQ"):
    pass


class _ByName(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        return any(c.__name__ == cls.__name__ and c.__module__.split(".")[0] == "sigma" for c in type(obj).__mro__)


class SigmaRule(metaclass=_ByName):
    pass


class SigmaCorrelationRule(metaclass=_ByName):
    pass


class SigmaCorrelationCondition(metaclass=_ByName):
    pass


class SigmaExtendedCorrelationCondition(metaclass=_ByName):
    pass


class SigmaRuleReference(metaclass=_ByName):
    def __init__(self, reference: str):
        self.reference = reference


class _Operation(metaclass=_ByName):
    def __init__(self, args: list):
        self.args = args


class CorrelationConditionAND(_Operation):
    pass


class CorrelationConditionOR(_Operation):
    pass


class CorrelationConditionNOT(_Operation):
    pass


class SigmaDetectionItem(metaclass=_ByName):
    pass
