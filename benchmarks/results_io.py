"""The one way benchmarks write results: flat numeric metrics, a date, written whole."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

REQUIRED = ("name", "command", "data", "metrics", "anchors")


def write_result(path, result: dict) -> Path:
    """Check the result's shape (``metrics`` a flat dict of finite numbers), stamp the date, write it."""
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise ValueError(f"benchmark result lacks {', '.join(missing)}")
    bad = [k for k, v in result["metrics"].items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
    if bad:
        raise ValueError(f"metrics must be finite numbers; not: {', '.join(bad)}")
    result = {**result, "date": result.get("date") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path
