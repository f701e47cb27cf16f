"""Generation and reconstruction metrics with CDVAE's definitions (Xie et al. 2022,
``scripts/compute_metrics.py``), so our numbers stand beside theirs:

* reconstruction: a prediction counts only if it is valid; match = ``StructureMatcher(stol=0.5,
  angle_tol=10, ltol=0.3).get_rms_dist`` finds a mapping; RMSE = mean normalised RMS of matches;
* structural validity: every interatomic distance > 0.5 Å and cell volume > 0.1 Å³;
  composition validity: SMACT charge neutrality + electronegativity (our ``check_validity``);
* coverage COV-R / COV-P: a reference is recalled (a sample is precise) when some sample
  (reference) lies within a structural AND a compositional fingerprint cutoff. CDVAE's
  fingerprints — the site-averaged matminer ``CrystalNNFingerprint("ops")`` and Magpie
  ``ElementProperty`` scaled by CDVAE's own constants — are :func:`cdvae_struct_fingerprint`,
  :func:`cdvae_comp_fingerprint` and :func:`cdvae_coverage` (cutoffs 0.2 / 4 for perov-5). They
  need ``matminer`` (the ``bench`` extra; it declares pandas < 3 but these two featurizers run on
  pandas 3, so install it with ``pip install --no-deps matminer scikit-learn``).
  :func:`structure_fingerprint` / :func:`composition_fingerprint` are a cheap matminer-free
  stand-in whose COV is NOT comparable with CDVAE's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher

from motif_screen.structures.validity import composition_is_valid, min_interatomic_distance

__all__ = [
    "CDVAE_COV_CUTOFFS_PEROV5",
    "cdvae_comp_fingerprint",
    "cdvae_coverage",
    "cdvae_fingerprints",
    "cdvae_matcher",
    "cdvae_struct_fingerprint",
    "cdvae_validity",
    "composition_fingerprint",
    "coverage",
    "reconstruction_metrics",
    "structure_fingerprint",
]


def cdvae_matcher():
    return StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)


def cdvae_validity(structure) -> tuple[bool, bool]:
    """(structural, compositional) validity as CDVAE defines them."""
    try:
        struct_ok = bool(structure.volume > 0.1 and min_interatomic_distance(structure) > 0.5)
    except Exception:
        struct_ok = False
    comp_ok = bool(composition_is_valid(structure.composition)[0])
    return struct_ok, comp_ok


def reconstruction_metrics(predictions: Sequence, truths: Sequence, valid: Sequence[bool] | None = None) -> dict:
    """match_rate and rmse (mean over matched structures) as CDVAE's RecEval."""
    matcher = cdvae_matcher()
    rms: list[float | None] = []
    for i, (pred, true) in enumerate(zip(predictions, truths)):
        if valid is not None and not valid[i]:
            rms.append(None)
            continue
        try:
            result = matcher.get_rms_dist(pred, true)
        except Exception:
            result = None
        rms.append(None if result is None else float(result[0]))
    matched = [r for r in rms if r is not None]
    return {
        "match_rate": len(matched) / max(len(rms), 1),
        "rmse": float(np.mean(matched)) if matched else float("nan"),
        "per_structure_rms": rms,
    }


def structure_fingerprint(structure, bins: int = 24, r_max: float = 2.4) -> np.ndarray:
    """Mean over sites of a Gaussian-smeared histogram of neighbour distances in units of
    (V/N)^(1/3) (scale free, rotation/permutation invariant, ~1 ms for a 5-atom cell)."""
    scale = (structure.volume / len(structure)) ** (1 / 3)
    centers, _, _, distances = structure.get_neighbor_list(r_max * scale)
    grid = np.linspace(0.3, r_max, bins)
    hist = np.zeros((len(structure), bins))
    if len(distances):
        d = distances / scale
        weights = np.exp(-((d[:, None] - grid[None, :]) ** 2) / (2 * 0.08**2))
        np.add.at(hist, centers, weights)
    return hist.mean(0) / 4.0


def composition_fingerprint(structure, vocabulary: Sequence[int]) -> np.ndarray:
    """Element fractions over ``vocabulary`` (elements outside it share one extra slot)."""
    index = {z: i for i, z in enumerate(vocabulary)}
    vec = np.zeros(len(vocabulary) + 1)
    for site in structure:
        vec[index.get(site.specie.Z, len(vocabulary))] += 1
    return vec / len(structure)


def _min_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a: min distance to b; for each row of b: min distance to a."""
    min_a = np.full(len(a), np.inf)
    min_b = np.full(len(b), np.inf)
    for start in range(0, len(a), chunk):
        d = np.sqrt(((a[start : start + chunk, None, :] - b[None, :, :]) ** 2).sum(-1))
        min_a[start : start + chunk] = d.min(1)
        min_b = np.minimum(min_b, d.min(0))
    return min_a, min_b


def coverage(gen_struct, gen_comp, ref_struct, ref_comp, struct_cutoff: float, comp_cutoff: float) -> dict:
    """CDVAE's COV-R / COV-P given fingerprints (rows) of generated and reference structures."""
    s_gen, s_ref = _min_distances(np.asarray(gen_struct), np.asarray(ref_struct))
    c_gen, c_ref = _min_distances(np.asarray(gen_comp), np.asarray(ref_comp))
    return {
        "cov_r": float(np.mean((s_ref <= struct_cutoff) & (c_ref <= comp_cutoff))),
        "cov_p": float(np.mean((s_gen <= struct_cutoff) & (c_gen <= comp_cutoff))),
    }


_FEATURIZERS: dict = {}


def _featurizer(name: str):
    """matminer featurizers are built once per process (the Magpie table is read from disk).
    matminer is imported here, not at the top: it is an optional extra (``bench``)."""
    if name not in _FEATURIZERS:
        if name == "crystalnn":
            from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

            _FEATURIZERS[name] = CrystalNNFingerprint.from_preset("ops")
        else:
            from matminer.featurizers.composition.composite import ElementProperty

            _FEATURIZERS[name] = ElementProperty.from_preset("magpie")
    return _FEATURIZERS[name]


def cdvae_struct_fingerprint(structure) -> np.ndarray | None:
    """CDVAE's structure fingerprint: matminer CrystalNN "ops" site fingerprints averaged over sites
    (61 numbers); ``None`` where CrystalNN fails, which CDVAE counts as a sample without fingerprint."""
    featurizer = _featurizer("crystalnn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "cannot locate an appropriate radius" for unusual ions
            return np.asarray([featurizer.featurize(structure, i) for i in range(len(structure))], dtype=float).mean(0)
    except Exception:
        return None


def cdvae_comp_fingerprint(composition) -> np.ndarray:
    """CDVAE's composition fingerprint: Magpie ElementProperty (132 numbers), standardised with CDVAE's
    constants; undefined features (NaN) become 0 as in CDVAE's scaler."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = np.asarray(_featurizer("magpie").featurize(composition), dtype=float)
    scaled = (raw - np.asarray(CDVAE_MAGPIE_MEANS)) / np.asarray(CDVAE_MAGPIE_STDS)
    return np.where(np.isnan(scaled), 0.0, scaled)


def cdvae_fingerprints(structures: Sequence) -> tuple[list, list]:
    """(structure, composition) fingerprints of each structure, the inputs of :func:`cdvae_coverage`."""
    return [cdvae_struct_fingerprint(s) for s in structures], [
        cdvae_comp_fingerprint(s.composition) for s in structures
    ]


def cdvae_coverage(
    gen_struct: Sequence,
    gen_comp: Sequence,
    ref_struct: Sequence,
    ref_comp: Sequence,
    struct_cutoff: float = 0.2,
    comp_cutoff: float = 4.0,
) -> dict:
    """COV-R / COV-P as CDVAE's ``compute_cov``: fingerprints that are ``None`` are left out of the
    distances; COV-P still divides by all samples (a sample without fingerprint is never precise)."""
    keep = [i for i, fp in enumerate(gen_struct) if fp is not None]
    refs = [i for i, fp in enumerate(ref_struct) if fp is not None]
    if not keep or not refs:
        return {"cov_r": 0.0, "cov_p": 0.0}
    out = coverage(
        np.stack([gen_struct[i] for i in keep]),
        np.stack([gen_comp[i] for i in keep]),
        np.stack([ref_struct[i] for i in refs]),
        np.stack([ref_comp[i] for i in refs]),
        struct_cutoff,
        comp_cutoff,
    )
    # CDVAE: recall averages over references with fingerprints, precision divides by ALL samples
    return {"cov_r": out["cov_r"], "cov_p": out["cov_p"] * len(keep) / len(gen_struct)}


# ---------------------------------------------------------------------------------------------
# CDVAE's coverage recipe, faithfully (``cdvae/common/constants.py`` and ``scripts/eval_utils.py``)
# ---------------------------------------------------------------------------------------------
#: COV cutoffs CDVAE uses for perov-5 ("perovskite" in its COV_Cutoffs): structure and scaled composition
CDVAE_COV_CUTOFFS_PEROV5 = {"struct": 0.2, "comp": 4.0}

#: CDVAE's standard scaler for the 132 Magpie features (CompScalerMeans / CompScalerStds, fitted on MP)
CDVAE_MAGPIE_MEANS = (
    21.194441759304013,
    58.20212663122281,
    37.0076848719188,
    36.52738520455582,
    13.350626389725019,
    29.468922184630255,
    28.71735137747704,
    78.8868535524408,
    50.16950217496375,
    59.56764743604155,
    19.020429484306277,
    61.335572740454325,
    47.14515893344343,
    141.75135923307818,
    94.60620029962553,
    85.95794070476977,
    34.07300576173523,
    68.06189371516912,
    637.9862061297893,
    1817.2394155466848,
    1179.2532094169414,
    1127.2743149568837,
    431.51034284549826,
    909.1060025135899,
    3.7744320927984534,
    13.673707104881585,
    9.899275012083132,
    9.620186927095652,
    3.8426065581251856,
    9.96950217496375,
    3.305461575640406,
    5.483035282745288,
    2.1775737071048815,
    4.215114560306594,
    0.8206087101824266,
    3.732092798453359,
    109.16732721121315,
    179.5570323827936,
    70.38970517158047,
    136.0978305229613,
    27.027545809538527,
    119.16713388110198,
    1.2721433060967857,
    2.4614001837260617,
    1.1892568776289631,
    1.9844483610247092,
    0.4691462290494881,
    2.100143582306204,
    1.4829869502174964,
    1.9899951667472209,
    0.5070082165297245,
    1.7956250375970633,
    0.2056251946617602,
    1.745867568873852,
    0.05650072498791687,
    2.3618656355727405,
    2.3053649105848235,
    1.2829636137262992,
    0.9995555685850794,
    1.5150314161430642,
    0.7731271145480909,
    7.4648139197680035,
    6.691686805219913,
    4.010677272036105,
    2.612307566507693,
    3.303528274528758,
    0.2739487675205413,
    5.889753504108265,
    5.615804736587724,
    2.3244356612494683,
    2.1426251769710905,
    1.4464475592073465,
    4.739246012566457,
    14.578395360077332,
    9.839149347510874,
    9.413701584608935,
    3.537059747455868,
    8.550410826486225,
    0.008119864668922184,
    0.43286611889801835,
    0.4247462542290962,
    0.16687837041055423,
    0.17139889490813626,
    0.10898985016916385,
    0.06283228612856452,
    2.6573707104881583,
    2.594538424359594,
    1.219602938224228,
    1.0596390454742999,
    1.1120831319478008,
    0.14842919284678588,
    3.8473658772353794,
    3.6989366843885936,
    1.4541605082183982,
    1.3862277372859781,
    0.8018849685838569,
    0.03542774287095215,
    2.4474625422909617,
    2.4120347994200095,
    0.7745217539010397,
    0.9145812330586208,
    0.3198646689221846,
    1.552730787820203,
    6.910681488641856,
    5.357950700821653,
    3.615163570754227,
    1.9072256165179793,
    2.6702271628806185,
    14.608536589568727,
    34.83222477045747,
    20.223688180890715,
    22.47901710732293,
    7.17674504190757,
    18.641837024143584,
    0.009066988883518605,
    0.9185191396809959,
    0.9094521507974755,
    0.4368550481994018,
    0.38905942883427047,
    0.48375558240695804,
    0.0012985909686158003,
    0.21708593995837092,
    0.21578734898975546,
    0.08167977375391729,
    0.08155386250705281,
    0.06036340747305611,
    116.32010633156113,
    217.5905751570807,
    101.27046882551957,
    162.87154200548844,
    41.920624308665566,
    136.4664572257129,
)
CDVAE_MAGPIE_STDS = (
    16.35781741152948,
    20.189540126474725,
    20.516298414514758,
    16.816765336550194,
    7.966591328222124,
    22.270791076753067,
    21.802116630115243,
    12.804546460581966,
    24.756629388687983,
    13.930306216047477,
    10.214535652334533,
    27.801612936980938,
    39.74031558353379,
    54.269739685575814,
    53.70466607591569,
    42.852342044453444,
    20.78341194242935,
    56.28783510219931,
    563.8004405882157,
    732.0722574247563,
    736.2122907972664,
    606.351603075103,
    272.62646060896407,
    810.6156779688841,
    3.0362262146833428,
    3.2075174256751606,
    4.0633818989245665,
    2.9738244769894764,
    1.7805586029644034,
    5.643243225066782,
    1.1994336274579853,
    0.8939013979423364,
    1.2297581799896975,
    1.0066021334519983,
    0.49129747526397105,
    1.4159553146070951,
    31.754756468836774,
    28.054241463256226,
    38.16336054795611,
    25.83485338379922,
    15.388376641904662,
    39.67137484594156,
    0.31988340032011076,
    0.6833658037760536,
    0.7464197945553585,
    0.4881349085029781,
    0.3176591553643101,
    0.8601748146737138,
    0.5864801661863596,
    0.10048913710210677,
    0.5836289120986499,
    0.2811748167435902,
    0.2468696279341553,
    0.5007375747433073,
    0.37237566669029587,
    1.7235989187720187,
    1.7058836077743305,
    1.1558859351244697,
    0.7677842566598179,
    1.9203550253462733,
    2.1289400248865182,
    3.5326064169848332,
    3.708508303762512,
    2.8709941136664567,
    1.6110681295257014,
    4.310192504023775,
    1.6644182118209292,
    6.228287671164213,
    6.1200848808512305,
    3.1986202996110302,
    2.4492978142248867,
    4.030497343977163,
    3.662028270049814,
    6.8192125550358345,
    6.614243783887738,
    4.334987449618594,
    2.568319610320196,
    5.9494890200106925,
    0.08974370432893491,
    0.4954725441517777,
    0.494304434278516,
    0.2309340434963803,
    0.2072873961103969,
    0.31162647950590266,
    0.39805702757060923,
    1.8111691089355726,
    1.7973395144505941,
    0.9486995373104102,
    0.7538753151875139,
    1.5233177017753785,
    0.7952606701778913,
    3.711190225170556,
    3.638721437232604,
    1.7171165424006831,
    1.4307904413917036,
    2.1047820817622904,
    0.49193748323158065,
    4.064840532426175,
    4.035286619587313,
    1.4858577214526643,
    1.5799117659864677,
    1.6130080156145745,
    1.555249156140194,
    4.776932951077492,
    4.569790780459629,
    2.224617778217326,
    1.7217507416156546,
    2.5969733650703763,
    7.215001918238936,
    19.252513469778584,
    18.775394044177858,
    9.447222764774764,
    6.7467931836261235,
    11.106825644766616,
    0.27206794253092115,
    1.6449321034573106,
    1.6236282792648686,
    0.8506917026741503,
    0.7020945355184042,
    1.2281895279350408,
    0.04134438177238229,
    0.5508855867341717,
    0.5486095551438679,
    0.24239297524046477,
    0.2127779137935831,
    0.3036750942874694,
    80.06063945615361,
    21.345794811194104,
    80.16475677581042,
    52.58533928558554,
    35.40836791039412,
    85.980205895116,
)
