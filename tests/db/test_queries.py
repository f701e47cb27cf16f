"""Query filters on a populated store, and that user text never becomes a MongoDB operator."""

import pytest

from motif_screen import keys
from motif_screen.db.documents import Candidate
from motif_screen.db.queries import CandidateQuery, Range, find_candidates, funnel_counts, parse_range
from motif_screen.db.records import record_oracle_result, set_predictions, set_status, upsert_candidate
from motif_screen.errors import InputError


@pytest.fixture
def populated(db, perovskites):
    """Five candidates over two campaigns and two rounds, with predictions and one oracle result."""
    gaps = {"SrTiO3": 1.8, "BaTiO3": 2.9, "CaTiO3": 3.5, "KNbO3": 0.5, "LaAlO3": 4.2}
    ids = {}
    for i, (name, s) in enumerate(perovskites.items()):
        campaign = "alpha" if i < 4 else "beta"
        doc, _ = upsert_candidate(campaign, s, origin={"method": "prior", "model_version": 1 + i % 2, "round": i % 2})
        set_predictions(doc.id, {keys.BAND_GAP: (gaps[name], 0.1)}, acquisition=float(i),
                        motif_labels=[f"{s[1].specie}:octahedral:O"])
        ids[name] = doc.id
    set_status(ids["SrTiO3"], keys.STATUS_SCREENED)
    set_status(ids["SrTiO3"], keys.STATUS_SUBMITTED)
    record_oracle_result(ids["SrTiO3"], keys.SOURCE_CHGNET, run_status="successful", band_gap=2.2, energy=-1.0)
    set_status(ids["KNbO3"], keys.STATUS_REJECTED, reason="invalid:min_distance")
    return ids


def names(docs):
    return sorted(d.formula for d in docs)


def test_filters_combine(populated):
    q = CandidateQuery(campaign="alpha", ranges={keys.BAND_GAP: Range(1.0, 3.0)})
    assert names(find_candidates(q)) == ["BaTiO3", "SrTiO3"]
    assert names(find_candidates(CandidateQuery(ranges={keys.BAND_GAP: Range(lower=3.0)}))) == ["CaTiO3", "LaAlO3"]
    assert names(find_candidates(CandidateQuery(statuses=["computed", "rejected"]))) == ["KNbO3", "SrTiO3"]
    assert names(find_candidates(CandidateQuery(elements=["Ti", "Ca"]))) == ["CaTiO3"]
    assert names(find_candidates(CandidateQuery(formula="TiSrO3"))) == ["SrTiO3"]
    assert names(find_candidates(CandidateQuery(motif="Nb:octahedral:O"))) == ["KNbO3"]
    assert names(find_candidates(CandidateQuery(model_version=2))) == ["BaTiO3", "KNbO3"]
    assert names(find_candidates(CandidateQuery(round=0, campaign="alpha"))) == ["CaTiO3", "SrTiO3"]


def test_oracle_ranges_use_oracle_values(populated):
    q = CandidateQuery(on="oracle", ranges={keys.BAND_GAP: Range(2.0, 2.5)})
    assert names(find_candidates(q)) == ["SrTiO3"]  # predicted 1.8 would not match, oracle 2.2 does
    assert names(find_candidates(CandidateQuery(on="predicted", ranges={keys.BAND_GAP: Range(2.0, 2.5)}))) == []


def test_sort_and_limit(populated):
    top = find_candidates(CandidateQuery(sort="acquisition", limit=2))
    assert [d.acquisition for d in top] == [4.0, 3.0]
    bottom = find_candidates(CandidateQuery(sort="acquisition", descending=False, limit=1))
    assert bottom[0].acquisition == 0.0


def test_funnel_counts_by_campaign_and_round(populated):
    counts = funnel_counts()
    assert counts["alpha"]["total"]["computed"] == 1 and counts["alpha"]["total"]["rejected"] == 1
    assert counts["alpha"]["total"]["proposed"] == 2 and counts["beta"]["total"]["proposed"] == 1
    assert sum(counts["alpha"]["rounds"][0].values()) == 2 and sum(counts["alpha"]["rounds"][1].values()) == 2


@pytest.mark.parametrize("text,expected", [("1.0:3.0", Range(1.0, 3.0)), ("1:", Range(1.0, None)),
                                           (":-0.5", Range(None, -0.5)), (" 2 : 2 ", Range(2.0, 2.0))])
def test_parse_range_accepts(text, expected):
    assert parse_range(text) == expected


@pytest.mark.parametrize("text,message", [("3:1", "lower bound is above"), ("abc", "expected LOW:HIGH"),
                                          ("a:b", "not a number"), (":", "at least one bound"),
                                          ("nan:1", "finite"), ("1:2:3", "expected LOW:HIGH")])
def test_parse_range_rejects(text, message):
    with pytest.raises(InputError, match=message):
        parse_range(text, "band-gap")


@pytest.mark.parametrize("query,message", [
    (CandidateQuery(campaign='{"$where": "sleep(1000)"}'), "not a valid name"),
    (CandidateQuery(campaign="$where"), "not a valid name"),
    (CandidateQuery(statuses=["done"]), "unknown status"),
    (CandidateQuery(elements=["Xx"]), "not an element"),
    (CandidateQuery(elements=["$regex"]), "not an element"),
    (CandidateQuery(motif="Ti:octahedral:$ne"), "motif"),
    (CandidateQuery(sort="$natural"), "cannot sort"),
    (CandidateQuery(ranges={"$where": Range(1, 2)}), "unknown property"),
    (CandidateQuery(limit=0), "--limit"),
])
def test_user_text_never_becomes_an_operator(populated, query, message):
    with pytest.raises(InputError, match=message):
        find_candidates(query)
    assert Candidate.objects.count() == 5  # nothing changed


def test_filter_keys_are_only_our_fields(populated):
    flt = CandidateQuery(campaign="alpha", statuses=["screened"], elements=["Ti"], motif="Ti:octahedral:O",
                         ranges={keys.BAND_GAP: Range(1, 2)}, model_version=1, round=0).to_filter()
    assert all(not k.startswith("$") for k in flt)
    assert {k for v in flt.values() if isinstance(v, dict) for k in v} <= {"$in", "$all", "$gte", "$lte"}


def test_prototype_filter_reads_the_stored_motif_summary(populated):
    Candidate.objects(id=populated["SrTiO3"]).update_one(set__motifs={"prototype": "perovskite"})
    Candidate.objects(id=populated["KNbO3"]).update_one(set__motifs={"prototype": "abx3_other"})
    assert CandidateQuery(prototype="perovskite").to_filter() == {"motifs.prototype": "perovskite"}
    assert names(find_candidates(CandidateQuery(prototype="perovskite"))) == ["SrTiO3"]
    assert names(find_candidates(CandidateQuery(prototype="abx3_other"))) == ["KNbO3"]
    with pytest.raises(InputError, match="unknown prototype"):
        CandidateQuery(prototype={"$ne": None}).validate()
