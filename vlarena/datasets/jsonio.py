"""JSON helpers shared by the dataset file formats (R2R, VLN-CE, Matterport connectivity).

- `write_json` serialises the whole document first (strict JSON: NaN and infinity are refused),
  then writes it to a temporary file in the target folder, fsyncs and renames it over the target,
  so a reader never sees a partial file and a failed write leaves the old file untouched.
  A path ending in `.gz` is gzip-compressed (as VLN-CE ships its episodes).
- `read_json` reads plain or gzip JSON and turns decoding errors into ValueError naming the file.
- `Records` builds validation errors that name the file, the record and the field:
  `"<file>: record 3 (image_id 'abc'): field 'pose' must be 16 numbers, got 12"`.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_MISSING = object()


def write_bytes_atomic(path: str | Path, payload: bytes) -> Path:
    """Write `payload` to `path` through a fsynced temporary file renamed over it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; data files are world-readable like any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any, indent: int | None = None) -> Path:
    """Write `data` as JSON to `path` atomically (gzip when the name ends in .gz); returns the path."""
    path = Path(path)
    text = json.dumps(data, allow_nan=False, indent=indent, separators=None if indent else (",", ":"))
    payload = gzip.compress(text.encode(), mtime=0) if path.name.endswith(".gz") else text.encode()
    return write_bytes_atomic(path, payload)


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    """Write one JSON document per line, atomically."""
    return write_bytes_atomic(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows).encode())


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document at `path` (gzip when the name ends in .gz); `what` names the expected format."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        return json.loads(raw)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; expected {what}") from None
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e}); expected {what}") from e


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


class Records:
    """Error messages for one file of records, each record named by its index and a key field."""

    def __init__(self, source: str | Path, key: str):
        self.source = str(source)
        self.key = key

    def where(self, index: int | None, record: Any = None, key_value: Any = None) -> str:
        if index is None:
            return f"{self.source}"
        if key_value is None and isinstance(record, dict):
            key_value = record.get(self.key)
        label = f" ({self.key} {short(key_value, 40)})" if key_value is not None else ""
        return f"{self.source}: record {index}{label}"

    def fail(self, index: int | None, record: Any, field: str, msg: str, key_value: Any = None) -> None:
        raise ValueError(f"{self.where(index, record, key_value)}: field '{field}' {msg}")

    def record(self, index: int, record: Any) -> dict:
        if not isinstance(record, dict):
            raise ValueError(f"{self.source}: record {index} must be a JSON object, got {type(record).__name__}")
        return record

    def get(self, index: int, record: dict, field: str) -> Any:
        if field not in record:
            self.fail(index, record, field, "is missing")
        return record[field]

    def number(self, index: int, record: dict, field: str) -> float:
        v = self.get(index, record, field)
        if not is_number(v):
            self.fail(index, record, field, f"must be a finite number, got {short(v)}")
        return float(v)

    def integer(self, index: int, record: dict, field: str) -> int:
        v = self.get(index, record, field)
        if not is_int(v):
            self.fail(index, record, field, f"must be an int, got {short(v)}")
        return int(v)

    def string(self, index: int, record: dict, field: str) -> str:
        v = self.get(index, record, field)
        if not isinstance(v, str) or not v:
            self.fail(index, record, field, f"must be a non-empty string, got {short(v)}")
        return v

    def boolean(self, index: int, record: dict, field: str) -> bool:
        v = self.get(index, record, field)
        if not isinstance(v, bool):
            self.fail(index, record, field, f"must be true or false, got {short(v)}")
        return v

    def vector(self, index: int, record: dict, field: str, n: int | None = None, value: Any = _MISSING) -> list[float]:
        """A list of finite numbers (of length n when given); `value` overrides record[field]."""
        v = self.get(index, record, field) if value is _MISSING else value
        if not isinstance(v, list):
            self.fail(index, record, field, f"must be a list of {n or ''} numbers, got {short(v)}".replace("  ", " "))
        if n is not None and len(v) != n:
            self.fail(index, record, field, f"must be {n} numbers, got {len(v)}")
        if not all(is_number(x) for x in v):
            self.fail(index, record, field, f"must hold finite numbers only, got {short(v)}")
        return [float(x) for x in v]
