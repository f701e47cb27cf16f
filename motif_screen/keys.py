"""Field names shared by graphs, models, the database and the CLI — one place, constants only.

NequIP keeps every data key in one module so that a typo is an import error, not a silent
mismatch between the graph builder and the model. We do the same, and extend it to the
database documents and the candidate life cycle.
"""

# --- graph fields (dict keys of a batched graph) -------------------------------------------
POSITIONS = "pos"  # (N, 3) Cartesian positions, Å
ATOMIC_NUMBERS = "atomic_numbers"  # (N,) int
SPECIES_INDEX = "species_index"  # (N,) index into the model's element vocabulary
CELL = "cell"  # (B, 3, 3) lattice rows, Å; zeros for molecules
PBC = "pbc"  # (B, 3) bool
EDGE_INDEX = "edge_index"  # (2, E) [source, target]
EDGE_CELL_SHIFT = "edge_cell_shift"  # (E, 3) integer lattice shifts of the source atom
EDGE_VECTORS = "edge_vectors"  # (E, 3) r_source + shift·cell − r_target
BATCH = "batch"  # (N,) graph index of each atom
NUM_NODES = "num_nodes"  # (B,) atoms per graph
FRAC_COORDS = "frac_coords"  # (N, 3)

# --- model outputs (dict keys of Encoder.forward) -------------------------------------------
NODE_FEATURES = "node_features"  # (N, irreps_hidden) equivariant per-atom features
NODE_INVARIANTS = "node_invariants"  # (N, C) the 0e part of NODE_FEATURES
LATENT = "latent"  # (B, latent_dim) invariant per-structure latent
LATENT_EQUIVARIANT = "latent_equivariant"  # (B, irreps_latent_equivariant) e.g. 1o vectors

# --- candidate life cycle -------------------------------------------------------------------
STATUS_PROPOSED = "proposed"
STATUS_SCREENED = "screened"
STATUS_SUBMITTED = "submitted"
STATUS_COMPUTED = "computed"
STATUS_FAILED = "failed"
STATUS_REJECTED = "rejected"
CANDIDATE_STATUSES = (
    STATUS_PROPOSED,
    STATUS_SCREENED,
    STATUS_SUBMITTED,
    STATUS_COMPUTED,
    STATUS_FAILED,
    STATUS_REJECTED,
)
# Which transitions are allowed; anything else is a bug and raises.
STATUS_TRANSITIONS = {
    STATUS_PROPOSED: {STATUS_SCREENED, STATUS_REJECTED},
    STATUS_SCREENED: {STATUS_SUBMITTED, STATUS_REJECTED},
    STATUS_SUBMITTED: {STATUS_COMPUTED, STATUS_FAILED},
    STATUS_FAILED: {STATUS_SUBMITTED, STATUS_COMPUTED},  # resubmitted, or `lpad rerun_fws` succeeded
    STATUS_COMPUTED: set(),
    STATUS_REJECTED: set(),
}

# why a candidate was sent to the oracle: chosen by the acquisition function, or a random control
SELECTED_BY_ACQUISITION = "acquisition"
SELECTED_AS_CONTROL = "control"
SELECTIONS = (SELECTED_BY_ACQUISITION, SELECTED_AS_CONTROL)

CAMPAIGN_STATUSES = ("created", "running", "completed", "stopped")

# --- oracle sources (never mix ML-potential results up with DFT) ----------------------------
SOURCE_VASP = "vasp"
SOURCE_CHGNET = "chgnet"
ORACLE_SOURCES = (SOURCE_VASP, SOURCE_CHGNET)
DFT_SOURCES = (SOURCE_VASP,)

# --- properties the heads predict and the oracles deliver -----------------------------------
FORMATION_ENERGY = "formation_energy_per_atom"  # eV/atom
ENERGY_PER_ATOM = "energy_per_atom"  # eV/atom
ENERGY_ABOVE_HULL = "energy_above_hull"  # eV/atom, distance to the convex hull of its chemical system
BAND_GAP = "band_gap"  # eV
KNOWN_PROPERTIES = (FORMATION_ENERGY, ENERGY_ABOVE_HULL, ENERGY_PER_ATOM, BAND_GAP)
# the property a model head learns for each target (stability is predicted from formation energies)
LEARNED_PROPERTY = {
    FORMATION_ENERGY: FORMATION_ENERGY,
    ENERGY_ABOVE_HULL: FORMATION_ENERGY,
    ENERGY_PER_ATOM: ENERGY_PER_ATOM,
    BAND_GAP: BAND_GAP,
}

# --- names written into atomate task documents by our powerups -----------------------------
TASKDOC_CANDIDATE_ID = "motif_screen_candidate_id"
TASKDOC_CAMPAIGN = "motif_screen_campaign"
TASKDOC_MODEL_VERSION = "motif_screen_model_version"
TASKDOC_REFERENCE = "motif_screen_reference"  # key of the reference entry a workflow computes

# --- MongoDB collection names ---------------------------------------------------------------
COLL_CAMPAIGNS = "ms_campaigns"
COLL_CANDIDATES = "ms_candidates"
COLL_ORACLE_RESULTS = "ms_oracle_results"
COLL_MODEL_VERSIONS = "ms_model_versions"
COLL_ROUNDS = "ms_rounds"
COLL_ROUND_CHUNKS = "ms_round_chunks"
COLL_REFERENCES = "ms_reference_entries"
COLL_PROTOTYPES = "ms_ground_state_prototypes"
GRIDFS_CHECKPOINTS = "ms_checkpoints"
ATOMATE_TASKS = "tasks"

# --- screening decisions (one per candidate, stored as Candidate.status_reason) -------------
# "invalid:<check>" names the first failed validity check, e.g. "invalid:distance".
DECISION_INVALID_PREFIX = "invalid:"
DECISION_DUPLICATE = "duplicate_in_batch"
DECISION_KNOWN = "known"  # matches a reference structure (training data or the database)
DECISION_MOTIF_MISMATCH = "motif_mismatch"
DECISION_BELOW_CUTOFF = "below_cutoff"  # scored, but under the score cutoff or outside the budget
DECISION_SELECTED = "selected"
