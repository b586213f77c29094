"""The shapes of the audit records an order's life produces: one definition for both paths.

Why: the per-event path (`engine.session`, `engine.venue_merge`) writes one record per
decision, request and venue report through `AuditLog.write`; the compiled fast path
(`engine.bulk`) writes the same records in bulk from the numba loop's log. The log must be
byte-identical either way (tests/engine/test_engine_compiled.py), so each record's type,
field names, their order, the constant fields and the text of each value are defined once
here and both paths use them: `Shape.fields` gives the keyword fields for
`AuditLog.write`, `Shape.template` the canonical text for `engine.audit.append_records`.

A record's canonical text is `engine.audit.canonical_record`'s (keys sorted, compact
separators); a field named like a fixed key overrides it (the submit decision's `type` is
the order type, "limit"). Decimal fields are written as `decimal_str` text (plain digits,
never an exponent), None as null.
"""

from __future__ import annotations

from decimal import Decimal
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from engine.audit import RecordShape, value_text
from engine.types.instrument import decimal_str


class Shape:
    """One record shape: its `type`, its field `names` in the order the writer passes them,
    `constants` ({name: value}, fixed for the shape) and `decimals` (names whose values are
    Decimal amounts written as `decimal_str`, or None)."""

    __slots__ = ("type", "names", "constants", "decimals", "_variable", "_template", "compiled")

    def __init__(self, type_: str, names: tuple[str, ...], constants: dict[str, Any] | None = None,
                 decimals: tuple[str, ...] = ()) -> None:
        self.type = type_
        self.names = names
        self.constants = dict(constants or {})
        self.decimals = frozenset(decimals)
        self._variable = tuple(n for n in names if n not in self.constants)
        self._template: tuple[str, tuple[int, ...]] | None = None
        # the same record through `AuditLog.write_shaped` (the hot path's encoder,
        # engine.audit.RecordShape): values are the variable fields in `names` order, a
        # Decimal one passed as its `decimal_str` text
        self.compiled = RecordShape(type_, self._variable, self.constants)

    def fields(self, *values: Any) -> dict[str, Any]:
        """The record's fields for `AuditLog.write(ts, shape.type, **fields)`: `values` are
        the variable fields in `names` order (constants left out); Decimal fields become text."""
        if len(values) != len(self._variable):
            raise TypeError(f"{self.type} record: {len(values)} values for the fields {self._variable}")
        given = dict(zip(self._variable, values, strict=True))
        out: dict[str, Any] = {}
        for name in self.names:
            value = self.constants[name] if name in self.constants else given[name]
            if name in self.decimals and value is not None:
                value = decimal_str(value)
            out[name] = value
        return out

    def template(self) -> tuple[str, tuple[int, ...]]:
        """(text, order) of the record's canonical text without its hash: `text % values`
        where values are the JSON texts of (seq, ts, *variable fields in `names` order, prev)
        taken in `order`. Constants are already in the text. `json_text` encodes a value."""
        if self._template is None:
            # a field named like a fixed key replaces it, as in AuditLog.write's dict display
            slot: dict[str, tuple[int, str | None]] = {"seq": (0, None), "ts": (1, None),
                                                       "type": (-1, json_text(self.type))}
            variable = 2
            for key in self.names:
                if key in self.constants:
                    slot[key] = (-1, json_text(self.constants[key]))
                else:
                    slot[key] = (variable, None)
                    variable += 1
            slot["prev"] = (variable, None)
            parts, order = [], []
            for key, (index, fixed) in sorted(slot.items()):
                value = fixed.replace("%", "%%") if fixed is not None else "%s"
                parts.append(_json_str(key).replace("%", "%%") + ":" + value)
                if fixed is None:
                    order.append(index)
            self._template = ("{" + ",".join(parts) + "}", tuple(order))
        return self._template


def json_text(value: Any) -> str:
    """A value's text inside a record, as the audit log's canonical encoder writes it
    (`engine.audit.value_text`), except a Decimal: written as `decimal_str`'s text, as the
    per-event path passes it (`Shape.fields`)."""
    if isinstance(value, Decimal):
        return _json_str(decimal_str(value))
    return value_text(value)


# -- the shapes (engine/session.py, engine/venue_merge.py; bench/PROFILE.md section 2b) --------
START = Shape("start", ("strategy",))
SUBMIT_DECISION = Shape(
    "decision",
    ("action", "client_id", "instrument", "side", "type", "tif", "qty", "price", "reduce_only", "parent_id"),
    {"action": "submit"}, decimals=("qty", "price"))
SUBMIT_REQUEST = Shape("request", ("action", "client_id", "venue"), {"action": "submit"})
CANCEL_REQUEST = Shape("request", ("action", "client_id"), {"action": "cancel"})
REJECT = Shape("reject", ("client_id", "reason"))
STATE_RESPONSE = Shape("response", ("client_id", "event", "reason", "exch_ts", "source"))
# a command's outcome: exch_ts only when the venue stamped it, evidence only when it gave some
COMMAND_RESPONSE = Shape("response", ("client_id", "command", "outcome", "reason"))
COMMAND_RESPONSE_TS = Shape("response", ("client_id", "command", "outcome", "reason", "exch_ts"))
COMMAND_RESPONSE_EVIDENCE = Shape("response", ("client_id", "command", "outcome", "reason", "evidence"))
COMMAND_RESPONSE_TS_EVIDENCE = Shape("response",
                                     ("client_id", "command", "outcome", "reason", "exch_ts", "evidence"))
FILL = Shape("fill", ("client_id", "exch_ts", "price", "qty", "fee", "fee_asset", "liquidity", "trade_id"),
             decimals=("price", "qty", "fee"))
# a fill the engine books itself, with no venue trade id: a liquidation or a delivery
# (engine.session.TradingSession.on_liquidation); its fee is in the settle asset
ENGINE_FILL = Shape("fill", ("client_id", "exch_ts", "price", "qty", "fee", "liquidity"),
                    decimals=("price", "qty", "fee"))
STOP = Shape("stop", ("orders", "fills"))


def command_response(client_id: str, command: str, outcome: str, reason: str | None, exch_ts: int | None,
                     evidence: dict[str, Any] | None) -> tuple[Shape, tuple[Any, ...]]:
    """(shape, values) of a command's outcome record: `exch_ts` and `evidence` only when given."""
    if exch_ts is None:
        if evidence:
            return COMMAND_RESPONSE_EVIDENCE, (client_id, command, outcome, reason, evidence)
        return COMMAND_RESPONSE, (client_id, command, outcome, reason)
    if evidence:
        return COMMAND_RESPONSE_TS_EVIDENCE, (client_id, command, outcome, reason, exch_ts, evidence)
    return COMMAND_RESPONSE_TS, (client_id, command, outcome, reason, exch_ts)
