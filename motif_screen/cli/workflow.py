"""``motif-screen workflow create``: write a campaign workflow file that `lpad add` accepts as it is."""

from __future__ import annotations

import json
from pathlib import Path

from motif_screen import keys
from motif_screen.cli.common import add_campaign_options, campaign_spec_from_args
from motif_screen.errors import InputError

HELP = "write a campaign workflow file for `lpad add` (YAML or JSON)"
DESCRIPTION = """\
Write a FireWorks workflow file for a campaign: its first Firework stores the campaign in MongoDB,
then every round runs generate -> prescreen -> submit -> collect-retrain-finish; submit inserts one
oracle workflow per selected candidate (and per missing elemental reference) before the round's
collector. Per-machine values stay atomate placeholders (>>db_file<<, >>vasp_cmd<<) resolved from
each worker's my_fworker.yaml.

  motif-screen workflow create --campaign sto --target band_gap --goal range --hit-above 1 --hit-below 3 \\
      --oracle vasp -o band_gap.yaml
  lpad add band_gap.yaml && rlaunch rapidfire
"""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser(
        "create", help="write a workflow file", description=DESCRIPTION, formatter_class=parser.formatter_class
    )
    create.add_argument("-o", "--output", type=Path, required=True, help="file to write (.yaml or .json)")
    create.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_campaign_options(
        create, default_name="campaign", default_oracle=keys.SOURCE_VASP, default_target=keys.FORMATION_ENERGY
    )


def workflow_text(workflow, suffix: str) -> str:
    """atomate objects do not dump to YAML directly (ruamel floats): round-trip through JSON first."""
    import yaml

    data = json.loads(json.dumps(workflow.to_dict(), default=str))
    for fw in data.get("fws", []):  # FireWorks stamps these again when the file is added
        fw.pop("created_on", None)
        fw.pop("updated_on", None)
    data.pop("created_on", None)
    data.pop("updated_on", None)
    if suffix == ".json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def run(args) -> int:
    from motif_screen.workflows.campaign import campaign_workflow

    spec = campaign_spec_from_args(args)
    out: Path = args.output
    if out.suffix not in (".yaml", ".yml", ".json"):
        raise InputError(f"{out}: the file name must end in .yaml, .yml or .json")
    if out.exists() and not args.force:
        raise InputError(f"{out} exists; use --force to overwrite")
    text = workflow_text(campaign_workflow(spec), out.suffix)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    print(
        f"wrote {out}: campaign {spec.name}, target {spec.target.goal} {spec.target.property}, "
        f"oracle {spec.oracle}, {spec.rounds} rounds, budget {spec.budget}"
    )
    print(f"next: lpad add {out} && rlaunch rapidfire")
    return 0
