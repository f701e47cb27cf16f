"""``motif-screen references``: the energies formation energies and the hull are measured against."""

from __future__ import annotations

from pathlib import Path

from motif_screen import keys
from motif_screen.cli.common import add_db_options, connect_from_args

HELP = "add reference entries you already have (e.g. from the Materials Project) and list them"
DESCRIPTION = """\
Formation energies and distances to the convex hull are computed against references of the same
oracle, functional and input set: elemental ground states (which a campaign computes itself with
the same atomate preset as its candidates when they are missing) and competing phases.

  motif-screen references add mp_entries.json        # pymatgen ComputedEntry / ComputedStructureEntry JSON
  motif-screen references list --elements Li F
  motif-screen references prototype Mn alpha_Mn.cif  # the ground state to compute when Mn's reference is missing

Entries of a file must share one functional; MP2020 corrections are applied where their rules apply
(GGA / GGA+U). Adding the same file twice changes nothing. Results waiting for a reference are
filled in at once.
"""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add", help="store the entries of a JSON file", description=DESCRIPTION, formatter_class=parser.formatter_class
    )
    add.add_argument("file", type=Path, help="JSON list of pymatgen entries (as_dict), e.g. exported from MP")
    add.add_argument(
        "--source",
        choices=keys.ORACLE_SOURCES,
        default=keys.SOURCE_VASP,
        help="which oracle the energies are comparable with (default: vasp)",
    )
    add_db_options(add)
    proto = sub.add_parser(
        "prototype",
        help="give the ground-state structure of an element",
        description=DESCRIPTION,
        formatter_class=parser.formatter_class,
    )
    proto.add_argument("element", help="element symbol, e.g. Mn")
    proto.add_argument("file", type=Path, help="a structure file (CIF, POSCAR, ...) of that element alone")
    add_db_options(proto)
    show = sub.add_parser(
        "list", help="show the stored references", description=DESCRIPTION, formatter_class=parser.formatter_class
    )
    show.add_argument("--source", choices=keys.ORACLE_SOURCES, default=None)
    show.add_argument("--elements", nargs="+", default=None, help="only entries made of these elements")
    add_db_options(show)


def run(args) -> int:
    # pymatgen and the campaign layers are imported here: `--help` stays fast
    from motif_screen.campaign import thermo
    from motif_screen.db.queries import validate_element
    from motif_screen.db.repository import Repository
    from motif_screen.oracles.references import read_reference_entries
    from motif_screen.oracles.stability import corrected

    if args.action == "add":
        entries = read_reference_entries(args.file)  # the whole file is checked before anything is stored
        corrected(entries)  # and MP2020's rules (a GGA entry with a foreign POTCAR is refused here)
        conn, _ = connect_from_args(args, readonly=False)
        repo = Repository(conn)
        added = sum(thermo.store_reference(repo, args.source, entry, origin="user")[1] for entry in entries)
        refreshed = thermo.refresh_all(repo, args.source)
        conn.flush()
        print(
            f"{added} new of {len(entries)} entries from {args.file} ({args.source}); "
            f"{refreshed['filled']} results filled in, {refreshed['moved']} distances to the hull moved"
        )
        return 0
    if args.action == "prototype":
        return set_prototype(args)
    conn, _ = connect_from_args(args, readonly=True)
    elements = [validate_element(e) for e in args.elements] if args.elements else None
    refs = Repository(conn).references(source=args.source, elements=elements, status=None)
    if not refs:
        print("no references stored" + (f" for {' '.join(elements)}" if elements else ""))
        return 0
    print(f"{'formula':<10} {'source':<7} {'functional':<10} {'input set':<22} {'eV/atom':>10}  origin    status")
    for r in refs:
        energy = f"{r.energy_per_atom:.4f}" if r.energy_per_atom is not None else "-"
        print(
            f"{r.formula:<10} {r.source:<7} {r.functional:<10} {r.input_set[:22]:<22} {energy:>10}  "
            f"{r.origin:<9} {r.status}"
        )
    return 0


def set_prototype(args) -> int:
    from motif_screen.db.queries import validate_element
    from motif_screen.db.repository import Repository
    from motif_screen.errors import InputError
    from motif_screen.structures.io import read_structures

    element = validate_element(args.element)
    found = read_structures(args.file)
    if len(found) != 1:
        raise InputError(f"{args.file} holds {len(found)} structures; give one")
    structure = found[0][1]
    symbols = sorted({el.symbol for el in structure.composition.elements})
    if not hasattr(structure, "lattice"):
        raise InputError(f"{args.file} is not a periodic structure; a ground state needs a cell")
    if symbols != [element] or not structure.is_ordered:
        raise InputError(f"{args.file} holds {'-'.join(symbols) or 'nothing'}, not ordered {element} alone")
    conn, _ = connect_from_args(args, readonly=False)
    Repository(conn).set_prototype(element, structure, origin=str(args.file))
    conn.flush()
    print(
        f"{element}: ground state from {args.file} ({structure.composition.reduced_formula}, {len(structure)} atoms); "
        "used when a campaign computes its reference"
    )
    return 0
