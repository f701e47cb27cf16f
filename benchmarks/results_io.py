"""What every benchmark shares: its standard options, the shipped model, and writing results
(flat numeric metrics, a date, the file written whole)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

REQUIRED = ("name", "command", "data", "metrics", "anchors")


def write_result(path, result: dict) -> Path:
    """Check the result's shape (``metrics`` a flat dict of numbers), stamp the date, write it whole.

    None / NaN / inf values are listed under ``undefined_metrics`` instead of being written as numbers.
    """
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise ValueError(f"benchmark result lacks {', '.join(missing)}")
    bad = [k for k, v in result["metrics"].items()
           if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
    if bad:
        raise ValueError(f"metrics must be finite numbers; not: {', '.join(bad)}")
    # an undefined value (e.g. RMSE with no match) is named, never written as NaN
    undefined = sorted(k for k, v in result["metrics"].items() if v is None or not math.isfinite(v))
    if undefined:
        print(f"undefined in this run (left out of metrics): {', '.join(undefined)}")
    metrics = {k: v for k, v in result["metrics"].items() if k not in undefined}
    result = {**result, "metrics": metrics, "undefined_metrics": undefined,
              "load_average_at_write": [round(x, 2) for x in os.getloadavg()],  # other jobs on the 2 cores slow timings
              "date": result.get("date") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path


ROOT = Path(__file__).resolve().parents[1]
SHIPPED_AUTOENCODER = ROOT / "motif_screen" / "pretrained" / "perov5_autoencoder.pt"


def add_model_options(parser, name: str) -> None:
    """--checkpoint, --steps, --seed, --threads, --out: the options of every autoencoder benchmark."""
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_AUTOENCODER, help="autoencoder checkpoint")
    parser.add_argument("--steps", type=int, default=None, help="flow steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--candidates", type=int, default=None,
                        help="structures decoded per latent, the one the encoder maps closest kept (default: the model's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"{name}.json")


def checkpoint_provenance(path) -> dict:
    """What a result needs to name the model it measured: the file's SHA-256 and what the checkpoint
    records of its making (data fingerprint, recipe name, code version and commit)."""
    import torch

    from motif_screen.provenance import file_sha256

    path = Path(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    config = payload.get("config") or {}
    return {
        "path": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
        "sha256": file_sha256(path),
        "data_fingerprint": payload.get("data_fingerprint"),
        "data": config.get("data"),
        "recipe": config.get("recipe") or config.get("name"),
        "code_version": payload.get("code_version"),
        "code_commit": payload.get("code_commit"),
    }


def load_model(args):
    """The autoencoder named by --checkpoint, with --threads torch threads."""
    import torch

    from motif_screen.model.checkpoint import load_autoencoder

    torch.set_num_threads(args.threads)
    return load_autoencoder(args.checkpoint)
