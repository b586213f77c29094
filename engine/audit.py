"""Append-only, hash-chained JSON-lines audit log and its verifier.

Why a chain: an auditor must be able to tell that no decision, request, response or fill
was removed or edited after the fact. Each record carries the SHA-256 of the previous
record's hash plus its own canonical JSON, so any edit breaks every later link.

Why a closing record: a chain only proves that what is there was not edited; a log cut
after any record, or extended with well-formed records, is still a valid chain. So a
finished run ends its log with one `end` record (`records` = how many came before it) and
states the count and the final hash elsewhere too (summary.json `run.audit`). `verify`
refuses a log without its closing record (cut short, or a run still in progress or
killed), one with records after it (extended), and one that disagrees with summary.json.

Why resume: a live account's log must survive restarts. `AuditLog(path, resume=True)`
verifies the existing chain, never truncates it, and continues it with one `resume`
record (what it found: records, head hash, whether the last session closed its log);
`verify` accepts records after a closing record only when the next one is such a
`resume`. A record torn by a crash mid-write (an incomplete last line) is moved, byte for
byte, to `<log>.torn` and named in the `resume` record (its length and SHA-256), so the
chain continues from the last whole record and nothing written is lost. `durable=True`
flushes and fsyncs every record as it is written: a crash of the machine loses at most the
record being written. `flush_each=True` (live modes) hands every record to the operating
system as it is written (one write call, no fsync): a killed process (kill -9, a crash of
ours) loses nothing written; the live recording fsyncs the log once a second with the rest,
which bounds what a crash of the machine can lose, without an fsync on the tick-to-order path.
"""

from __future__ import annotations

import hashlib
import json
import os
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any

from engine.errors import DataError, InternalError, file_problem

_sha256 = hashlib.sha256

GENESIS = "0" * 64
END = "end"  # type of the closing record
RESUME = "resume"  # first record of a session that continues an existing log
BATCH_ROWS = 4096  # `AuditLog(batch=True)`: rows kept before they are encoded and written


# one encoder for every record: json.dumps with options builds a new JSONEncoder per call,
# which was a measurable share of the live hot path (bench/README.md "Live-path latency")
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _canonical(record: dict[str, Any]) -> str:
    return _ENCODER.encode(record)


# per tuple of field names (in the caller's order): a %-template of the record's canonical
# text with its keys already sorted and quoted, and the order its values go in
_TEMPLATES: dict[tuple[str, ...], tuple[str, tuple[int, ...]]] = {}


def _template(names: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """The canonical text of a record with fields `names`, values left as %s: what
    `_canonical` writes (keys sorted, ',' and ':' separators), computed once per shape.
    The order indexes the values (seq, ts, type, *fields, prev); a field named like a
    fixed key overrides it as in the dict `AuditLog.write` used to build (the submit
    decision's `type` is the order type), except `prev`, which comes last."""
    slot: dict[str, int] = {}
    for i, key in enumerate(("seq", "ts", "type", *names, "prev")):
        slot[key] = i  # a later key of the same name wins, as in a dict display
    ordered = sorted(slot.items())
    text = ",".join(_json_str(key).replace("%", "%%") + ":%s" for key, _ in ordered)
    return "{" + text + "}", tuple(i for _, i in ordered)


def _value(value: Any) -> str:
    """One value as `_ENCODER` writes it inside a record (the common types inline)."""
    kind = type(value)
    if kind is str:
        return _json_str(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _ENCODER.encode(value)  # Decimal (default=str), dicts, lists, floats, enums


def canonical_record(seq: int, ts: Any, type_: Any, fields: dict[str, Any], prev: str) -> str:
    """`_canonical({"seq": seq, "ts": ts, "type": type_, **fields, "prev": prev})`, without
    building the dict or running json's generic encoder: a record's text from an encoder
    generated once per shape (its field names; `RecordShape`), the values encoded by type.
    The audit log writes ~1.3 records per order event, and json's encoder was its largest
    cost (bench/PROFILE.md); tests/engine/test_engine_audit.py pins this to `_canonical`
    for any record."""
    names = tuple(fields)
    text = _ENCODERS.get(names)
    if text is None:
        text = RecordShape(None, names).text
        if len(_ENCODERS) < 4096:  # shapes come from code; a caller inventing names is not cached
            _ENCODERS[names] = text
    return text(seq, ts, prev, type_, *fields.values())


# the encoding of one value inside a generated encoder: `_value` with its common cases
# (str, exact int, None, True, False) inline, so a record costs one call and one %-format
# (None and the bools inline too: a submit decision's parent_id and reduce_only, a response's
# reason, ~0.1 us a record, bench/PROFILE.md 1i)
_INLINE = ("(_J({v}) if type({v}) is str else {v} if type({v}) is int else 'null' if {v} is None "
           "else 'true' if {v} is True else 'false' if {v} is False else _V({v}))")


class RecordShape:
    """One kind of record, compiled: its type and its fixed fields' values baked into its
    canonical text, the varying fields' values (in `names` order) filled in per record.

    `shape.text(seq, ts, prev, *values)` is exactly `canonical_record(seq, ts, type_,
    {**fixed, **dict(zip(names, values))}, prev)` for the log's own `seq` (an int) and
    `prev` (a hash's hex digits, written without escaping: bench/PROFILE.md 1i)
    (tests/engine/test_engine_audit.py pins
    it for any shape and values), with no per-record dict, template lookup or per-value
    call: the hot path's records (the submit decision and request, bench/PROFILE.md 1c) are
    written through `AuditLog.write_shaped`. `type_` None makes the type a value too (it is
    then the first of `values`: `canonical_record`'s generic shapes).
    """

    __slots__ = ("type", "names", "fixed", "text")

    def __init__(self, type_: str | None, names: tuple[str, ...], fixed: dict[str, Any] | None = None) -> None:
        fixed = dict(fixed or {})
        if set(fixed) & set(names):
            raise InternalError(f"audit record shape: fields {sorted(set(fixed) & set(names))} both fixed and varying")
        self.type, self.names, self.fixed = type_, tuple(names), fixed
        # (key, source) in the order a dict display {seq, ts, type, **fields, prev} keeps,
        # a later key of the same name winning; a source is a parameter or a fixed value
        params = [f"v{i}" for i in range(len(self.names))]
        slot: dict[str, tuple[str, Any]] = {"seq": ("p", "seq"), "ts": ("p", "ts")}
        slot["type"] = ("p", "type_") if type_ is None else ("c", type_)
        for key, value in fixed.items():
            slot[key] = ("c", value)
        for key, param in zip(self.names, params, strict=True):
            slot[key] = ("p", param)
        slot["prev"] = ("p", "prev")
        # the record's text as one f-string: its constant pieces (keys, fixed values,
        # punctuation) as plain literals beside it, which Python joins with the f-string at
        # compile time without reading braces in them (repr() escapes quotes and
        # backslashes); a value is an f-string field. An f-string builds the text in one
        # step; `template % values` parsed its template on every record (~30% of a record's
        # text: bench/PROFILE.md 1j)
        code: list[str] = []  # source of each piece: a plain literal, or an f-string field
        text = "{"
        for n, (key, (kind, source)) in enumerate(sorted(slot.items())):
            text += ("," if n else "") + _json_str(key) + ":"
            if kind == "c":
                text += _value(source)
                continue
            if source == "prev":  # the chain's hash: 64 hex digits, quoted as they are
                value = "prev"
            elif source == "seq":  # the log's own count: an int, written as it is
                value = "seq"
            else:
                value = _INLINE.format(v=source)
            if source == "prev":
                text += '"'
            code += [repr(text), 'f"{' + value + '}"']
            text = '"' if source == "prev" else ""
        code.append(repr(text + "}"))
        body = " ".join(code)
        lead = ["seq", "ts", "prev"] + (["type_"] if type_ is None else [])
        source = (f"def text({', '.join(lead + params)}):\n"
                  f"    return ({body})\n")
        namespace: dict[str, Any] = {"_J": _json_str, "_V": _value}
        exec(source, namespace)  # noqa: S102 - generated from the shape's own field names (escaped)
        self.text = namespace["text"]


_ENCODERS: dict[tuple[str, ...], Any] = {}


def _link(prev: str, body: str) -> str:
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditLog:
    """Writes one JSON object per line: {seq, ts, type, ..., prev, hash}."""

    def __init__(self, path: Path, *, resume: bool = False, durable: bool = False, flush_each: bool = False,
                 ts: int = 0, batch: bool = False) -> None:
        """A new log at `path` (an existing file is replaced), or with `resume` the
        existing one continued (created when absent; DataError when its chain is broken).
        `durable`: flush and fsync after every record; `flush_each`: flush (no fsync) after
        every record (live modes; the submit's decision goes out with its request, `write_shaped`
        `hold`). `ts` stamps the `resume` record.

        `batch` (backtests; ignored with `flush_each` or `durable`): a `write_shaped` record
        is kept as a row (its shape's encoder, ts, values) and encoded, linked and written
        with the rows before it at the next `flush`, `write`, `seal` or `close`, or when
        `BATCH_ROWS` have gathered: the same bytes and chain, without a call into the chain
        and a write call per record (bench/PROFILE.md 1e). Its values must not change after
        the call (the hot path's are str, int, None; a command's evidence dict is built per
        record)."""
        self.path = Path(path)
        self._prev = GENESIS
        self._seq = 0
        self.durable = durable
        self.flush_each = flush_each or durable
        self.sealed: dict[str, Any] | None = None
        found = None
        if resume and self.path.is_file():
            found = _resume_point(self.path)
            self._seq, self._prev = found["records"], found["head"]
        self._file = self.path.open("a" if resume else "w", encoding="utf-8")
        # live modes (`flush_each`): each record goes to the OS by one `os.write` of its bytes
        # on the file's descriptor (the text layer's buffer stays empty in this mode, so
        # nothing overtakes it); a held record (`write_shaped(hold=True)`) waits in `_held`
        # for the next one. The text layer's write + flush cost ~1 us more per record.
        self._fd = self._file.fileno()
        self._held: list[str] = []
        # `batch`: records kept as rows until `_drain` (None: every record written at once)
        self._rows: list[tuple[Any, int, tuple[Any, ...]]] | None = [] if batch and not self.flush_each else None
        if found is not None and found["records"]:
            self.write(ts, RESUME, records=found["records"], head=found["head"], closed=found["closed"],
                       **({"torn": found["torn"]} if found.get("torn") else {}))

    def write(self, ts: int, type_: str, **fields: Any) -> None:
        if self.sealed is not None:
            raise InternalError(f"{self.path}: a {type_!r} record after the closing record")
        if self._rows:
            self._drain()
        self._append(canonical_record(self._seq, ts, type_, fields, self._prev))

    def write_shaped(self, shape: RecordShape, ts: int, *values: Any, hold: bool = False) -> None:
        """`write(ts, shape.type, **shape.fixed, **dict(zip(shape.names, values)))`, the
        same bytes, through the shape's compiled encoder (the hot path's records).

        `hold`: with `flush_each`, leave this record in the buffer for the next record's
        flush (one write call for both). Only for a record the caller follows with another
        at once, or with `flush()` when it raises: the submit's decision, which goes out
        with its request (or reject) record, still before the request reaches the venue."""
        if self.sealed is not None:
            raise InternalError(f"{self.path}: a {shape.type!r} record after the closing record")
        rows = self._rows
        if rows is not None:
            rows.append((shape.text, ts, values))
            if len(rows) >= BATCH_ROWS:
                self._drain()
            return
        self._append(shape.text(self._seq, ts, self._prev, *values), hold)

    def _drain(self) -> None:
        """Encode, link and write the rows `batch` kept, in order: each record's text and
        hash exactly as `_append` makes them (the chain is sequential: each link covers the
        previous hash), one write call for all of them."""
        rows = self._rows
        if not rows:
            return
        prev, seq = self._prev, self._seq
        sha = _sha256
        lines = []
        add = lines.append
        for text, ts, values in rows:
            body = text(seq, ts, prev, *values)
            prev = sha((prev + body).encode()).hexdigest()
            add(f'{body[:-1]},"hash":"{prev}"}}\n')
            seq += 1
        rows.clear()
        self._prev, self._seq = prev, seq
        self._file.write("".join(lines))

    def flush(self) -> None:
        """Hand what is buffered to the operating system (a held record, or a backtest's)."""
        if self._rows:
            self._drain()
        self._file.flush()
        if self._held:
            self._write_now("".join(self._held))
            self._held.clear()

    def _write_now(self, text: str) -> None:
        """`text` (whole records) to the OS at once, past the text layer (empty in live modes)."""
        data = text.encode()
        done = os.write(self._fd, data)
        while done < len(data):  # a write may take only part of it
            data = data[done:]
            done = os.write(self._fd, data)

    def _append(self, body: str, hold: bool = False) -> None:
        """Link `body` (a record's canonical text, `prev` in it) to the chain and write it."""
        digest = _sha256((self._prev + body).encode()).hexdigest()  # _link, inline: the hot path
        # encode once: the hash goes last; the verifier re-canonicalises without it
        line = f'{body[:-1]},"hash":"{digest}"}}\n'
        self._prev = digest
        self._seq += 1
        if not self.flush_each:
            self._file.write(line)  # buffered: the OS gets it when the buffer fills or at a flush
        elif hold:
            self._held.append(line)
        else:
            if self._held:
                line = "".join(self._held) + line
                self._held.clear()
            self._write_now(line)
            if self.durable:
                os.fsync(self._fd)

    def seal(self, ts: int) -> dict[str, Any]:
        """Write the closing record and return {records, final_hash} for the run's summary.

        `records` counts every line including the closing one; `final_hash` is the closing
        record's hash (the head of the chain).
        """
        if self.sealed is None:
            self._drain()  # the kept rows first: `records` counts them
            self.write(ts, END, records=self._seq)
            self.flush()
            os.fsync(self._file.fileno())
            self.sealed = {"records": self._seq, "final_hash": self._prev}
        return self.sealed

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


def verify(path: Path, expected: dict[str, Any] | None = None) -> int:
    """Check a log's chain and its closing record; returns the record count.

    `expected` is the run's own statement {records, final_hash} (summary.json
    `run.audit`); when given, the log must match it. Raises DataError naming the first
    broken, missing or extra record.
    """
    prev = GENESIS
    count = 0
    end_line = 0
    end_claim = None
    file = Path(path)
    if (problem := file_problem(file)) is not None:
        raise DataError(f"audit log {problem}: {file}")
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{file}:{line_no}: not JSON ({exc.msg})") from None
            if end_line and not (isinstance(record, dict) and record.get("type") == RESUME):
                raise DataError(f"{file}:{line_no}: extended: a record after the closing record of line "
                                f"{end_line} (the run ended with {end_line} records)")
            end_line = 0
            claimed = record.pop("hash", None)
            if record.get("prev") != prev:
                raise DataError(f"{file}:{line_no}: chain broken (prev does not match line {line_no - 1})")
            if record.get("seq") != count:
                raise DataError(f"{file}:{line_no}: seq {record.get('seq')} but expected {count}")
            if _link(prev, _canonical(record)) != claimed:
                raise DataError(f"{file}:{line_no}: hash mismatch (record was altered)")
            prev = claimed
            count += 1
            if record.get("type") == END:
                end_line, end_claim = line_no, record.get("records")
            elif record.get("type") == RESUME and record.get("records") != count - 1:
                raise DataError(f"{file}:{line_no}: the resume record counts {record.get('records')} records "
                                f"before it, the log holds {count - 1}")
    if expected is not None:
        want = int(expected.get("records", -1))
        if count < want:
            raise DataError(f"{file}: cut short: {count} records but the run wrote {want}; the first missing "
                            f"record is seq {count} (line {count + 1})")
        if count > want:
            raise DataError(f"{file}: extended: {count} records but the run wrote {want}; the first extra "
                            f"record is seq {want} (line {want + 1})")
        if expected.get("final_hash") != prev:
            raise DataError(f"{file}: final hash {prev[:16]}... differs from the run's {str(expected.get('final_hash'))[:16]}..."
                            " (the log was rewritten)")
    if not end_line:
        raise DataError(f"{file}: no closing record after {count} records (chain intact up to line {count}): the log "
                        f"was cut short after seq {count - 1}, or the run is still in progress or was killed")
    if end_claim != count - 1:
        raise DataError(f"{file}:{end_line}: the closing record counts {end_claim} records before it, "
                        f"the log holds {count - 1}")
    return count


def _resume_point(path: Path) -> dict[str, Any]:
    """Where an existing log continues: {records, head, closed, torn}. The chain of every
    whole record is checked (DataError at the first broken one); an incomplete last line
    (no newline: a crash mid-write) is appended to `<log>.torn`, fsynced, and only then
    cut from the log."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    torn = None
    if cut < len(data):
        tail = data[cut:]
        side = path.with_name(path.name + ".torn")
        with side.open("ab") as handle:
            handle.write(tail)
            handle.flush()
            os.fsync(handle.fileno())
        with path.open("r+b") as handle:
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
        torn = {"bytes": len(tail), "sha256": hashlib.sha256(tail).hexdigest(), "moved_to": side.name}
    prev, count, closed = GENESIS, 0, False
    for line_no, line in enumerate(data[:cut].decode("utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: not JSON ({exc.msg}); cannot resume this log") from None
        claimed = record.pop("hash", None)
        if record.get("prev") != prev or record.get("seq") != count or _link(prev, _canonical(record)) != claimed:
            raise DataError(f"{path}:{line_no}: chain broken; cannot resume this log (check it with "
                            "`tickparity audit verify`)")
        prev, count = claimed, count + 1
        closed = record.get("type") == END
    return {"records": count, "head": prev, "closed": closed, "torn": torn}


def run_statement(log: Path) -> dict[str, Any] | None:
    """The run's own {records, final_hash} for a log, from summary.json beside it, if any."""
    summary = Path(log).parent / "summary.json"
    if not summary.is_file():
        return None
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError) as exc:
        raise DataError(f"{summary}: cannot read ({exc})") from None
    stated = data.get("run", {}).get("audit") if isinstance(data, dict) else None
    return stated if isinstance(stated, dict) else None


# -- bulk: records of known shapes appended at once (the compiled fast path, engine/bulk.py) ----
value_text = _value  # one value's text inside a record (engine/audit_records.py builds templates with it)


_FORMATS: dict[str, str] = {}  # a Shape template -> its str.format text (`_format_of`)


def _format_of(template: str, order: tuple[int, ...]) -> str:
    """A `Shape.template()` text as a `str.format` text taking the values in their own
    order (seq, ts, *fields, prev): each `%s` becomes `{i}` for its index in `order`, so a
    record is one `format` call instead of a reordered tuple and `%`. Braces in the
    template's constants are doubled, `%%` is `%` again."""
    parts = template.split("%%")
    out = []
    slot = 0
    for n, part in enumerate(parts):
        pieces = part.replace("{", "{{").replace("}", "}}").split("%s")
        for k, piece in enumerate(pieces):
            out.append(piece)
            if k < len(pieces) - 1:
                out.append(f"{{{order[slot]}}}")
                slot += 1
        if n < len(parts) - 1:
            out.append("%")
    if slot != len(order):
        raise InternalError(f"audit template with {slot} values for {len(order)} slots")
    return "".join(out)


def append_records(log: AuditLog, records: list[tuple[str, tuple[int, ...], tuple[str, ...]]]) -> None:
    """Append records to `log`'s chain in one write: each is (template, order, texts) of an
    `engine.audit_records.Shape` (`Shape.template()`), `texts` the JSON texts of its ts and
    variable fields (`json_text`). Each record gets its seq, prev and hash here, exactly as
    `AuditLog.write` would give them, so the chain is the per-event path's, byte for byte.
    Hashing stays sequential (each link covers the previous hash); what is saved is the dict,
    the generic encoder and one write call per record."""
    if not records:
        return
    if log.sealed is not None:
        raise InternalError(f"{log.path}: records after the closing record")
    log.flush()  # a held record, and a batched log's kept rows, go first
    prev, seq = log._prev, log._seq
    sha = hashlib.sha256
    formats = _FORMATS
    lines = []
    for template, order, texts in records:
        fmt = formats.get(template)
        if fmt is None:
            fmt = formats[template] = _format_of(template, order)
        body = fmt.format(seq, *texts, f'"{prev}"')
        digest = sha((prev + body).encode()).hexdigest()
        lines.append(f'{body[:-1]},"hash":"{digest}"}}\n')
        prev = digest
        seq += 1
    log._file.write("".join(lines))
    log._prev, log._seq = prev, seq
    if log.flush_each:
        log._file.flush()
        if log.durable:
            os.fsync(log._file.fileno())
