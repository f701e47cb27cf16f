"""A round split into chunks and shards: the same candidates and decisions whatever the split, batched
writes, a clear refusal while a shard is missing, and re-runs that neither lose nor duplicate."""

from __future__ import annotations

import pytest

from motif_screen import keys

ROUND = 0


def spec_dict(name: str, shards: int, **extra) -> dict:
    return {
        "name": name,
        "target": {"property": keys.ENERGY_ABOVE_HULL, "goal": "minimize", "upper": 0.1},
        "budget": 6,
        "rounds": 1,
        "candidates_per_round": 60,
        "chunk_size": 20,
        "shards": shards,
        "control_fraction": 0.2,
        "oracle": "chgnet",
        "generation": {"flow_steps": 3},
        "seed": 3,
        **extra,
    }


@pytest.fixture
def repo(db):
    from motif_screen.db.repository import Repository

    return Repository(db)


def run_round(repo, spec: dict, shard_order=None) -> dict:
    from motif_screen.campaign import steps
    from motif_screen.campaign.spec import parse_spec

    steps.create_campaign(repo, parse_spec(spec))
    for shard in shard_order or range(spec["shards"]):
        steps.generate_shard(repo, spec["name"], ROUND, shard)
    return steps.select_round(repo, spec["name"], ROUND)


def decisions(name: str) -> dict:
    """fingerprint -> what the round decided, for every stored candidate of the campaign."""
    from motif_screen.db.documents import Candidate

    return {
        c.fingerprint: (
            c.status,
            c.status_reason,
            c.selection,
            None if c.acquisition is None else round(c.acquisition, 9),
            tuple(c.motif_labels),
            c.origin.round,
        )
        for c in Candidate.objects(campaign=name)
    }


def test_any_split_into_shards_gives_the_round_one_shard_gives(repo):
    from motif_screen.db.documents import RoundRecord

    one = run_round(repo, spec_dict("one", 1))
    three = run_round(repo, spec_dict("three", 3), shard_order=[2, 0, 1])  # shards finish in any order
    assert one["generated"] == three["generated"] == 60
    assert decisions("one") == decisions("three")
    assert {k: v for k, v in one.items() if k != "inserted"} == {k: v for k, v in three.items() if k != "inserted"}
    assert one["selected"] == 6 and one["decisions"][keys.DECISION_SELECTED] == 6
    statuses = {v[0] for v in decisions("one").values()}
    assert statuses <= {keys.STATUS_SCREENED, keys.STATUS_REJECTED}
    # every proposal is accounted for: stored with a decision, or counted as a fingerprint seen before
    record = RoundRecord.objects.get(campaign="three", round=ROUND)
    assert record.generated == len(decisions("three")) + record.identical_fingerprints
    assert record.shards == 3 and record.selected
    assert set(record.phase_seconds) >= {"generation", "prediction", "fingerprint", "selection_storage"}


def test_the_selection_refuses_a_round_with_a_missing_shard_and_names_it(repo):
    from motif_screen.campaign import steps
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.db.documents import Candidate
    from motif_screen.errors import InputError

    spec = spec_dict("gap", 2)
    steps.create_campaign(repo, parse_spec(spec))
    steps.generate_shard(repo, "gap", ROUND, 0)
    named = r"shard\(s\) 2/2 have not stored chunk\(s\) 1.*'motif_screen gap r0 generate 2/2'"
    with pytest.raises(InputError, match=named):
        steps.select_round(repo, "gap", ROUND)
    assert Candidate.objects(campaign="gap").count() == 0  # nothing written from a partial round
    steps.generate_shard(repo, "gap", ROUND, 1)
    assert steps.select_round(repo, "gap", ROUND)["generated"] == 60


def test_a_selection_killed_after_writing_is_rerun_without_duplicates(repo, monkeypatch):
    from motif_screen.campaign import steps
    from motif_screen.db.documents import Candidate, RoundChunk
    from motif_screen.db.repository import Repository

    spec = spec_dict("crash", 2)

    def killed(self, campaign, round_index):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(Repository, "mark_round_selected", killed)
    with pytest.raises(KeyboardInterrupt):
        run_round(repo, spec)
    written = decisions("crash")
    assert written and RoundChunk.objects(campaign="crash").count() == 3  # chunks kept until the round is marked
    monkeypatch.undo()
    again = steps.select_round(repo, "crash", ROUND)
    assert again["inserted"] == 0 and decisions("crash") == written
    assert RoundChunk.objects(campaign="crash").count() == 0
    assert steps.select_round(repo, "crash", ROUND)["resumed"] is True
    assert steps.generate_shard(repo, "crash", ROUND, 0)["resumed"] is True
    assert Candidate.objects(campaign="crash").count() == len(written)


def test_a_shard_rerun_skips_the_chunks_it_already_stored(repo, monkeypatch):
    from motif_screen.campaign import learner, steps
    from motif_screen.campaign.spec import parse_spec

    steps.create_campaign(repo, parse_spec(spec_dict("resume", 1)))
    calls = []
    real = learner.propose

    def propose(*args, chunk=0, **kwargs):
        calls.append(chunk)
        if chunk == 2 and calls.count(2) == 1:
            raise RuntimeError("worker killed in chunk 2")
        return real(*args, chunk=chunk, **kwargs)

    monkeypatch.setattr(learner, "propose", propose)
    with pytest.raises(RuntimeError):
        steps.generate_shard(repo, "resume", ROUND, 0)
    result = steps.generate_shard(repo, "resume", ROUND, 0)
    assert calls == [0, 1, 2, 2] and result["resumed_chunks"] == 2


def test_the_round_reads_and_writes_candidates_in_batches(repo, monkeypatch):
    """Database calls on the candidates collection per chunk stay constant: no per-candidate upserts."""
    from mongomock.collection import Collection

    from motif_screen.campaign import steps
    from motif_screen.campaign.spec import parse_spec

    steps.create_campaign(repo, parse_spec(spec_dict("batched", 1)))
    calls: list[tuple[str, str]] = []
    for method in ("find", "insert_one", "insert_many", "update_one", "update_many", "replace_one", "bulk_write"):
        real = getattr(Collection, method)

        def counted(self, *args, _method=method, _real=real, **kwargs):
            calls.append((self.name, _method))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Collection, method, counted)
    steps.generate_shard(repo, "batched", ROUND, 0)
    steps.select_round(repo, "batched", ROUND)
    on_candidates = [m for name, m in calls if name == keys.COLL_CANDIDATES]
    assert on_candidates.count("insert_many") == 3  # one per chunk
    assert "update_one" not in on_candidates and "insert_one" not in on_candidates
    assert len(on_candidates) <= 3 + 4  # the inserts, the campaign's fingerprints and the sent structures


def test_chunks_and_shards_are_checked_in_the_spec():
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.errors import InputError

    spec = parse_spec(spec_dict("sizes", 2, candidates_per_round=45))
    assert spec.chunk_sizes() == [20, 20, 5] and spec.shard_chunks(0) == [0, 2] and spec.shard_chunks(1) == [1]
    with pytest.raises(InputError, match="4 shards for 3 chunks"):
        parse_spec(spec_dict("sizes", 4))
    with pytest.raises(InputError, match="chunk_size"):
        parse_spec(spec_dict("sizes", 1, chunk_size=0))


def test_the_workflow_has_one_firework_per_shard_with_the_worker_categories():
    from motif_screen.campaign.spec import parse_spec
    from motif_screen.workflows.campaign import campaign_workflow

    spec = parse_spec(spec_dict("wf", 3, shard_category="gpu", train_category="gpu", rounds=2, budget=8))
    wf = campaign_workflow(spec)
    by_name = {fw.name: fw for fw in wf.fws}
    shards = [by_name[f"motif_screen wf r1 generate {k}/3"] for k in (1, 2, 3)]
    assert all(fw.spec["_category"] == "gpu" for fw in shards)
    assert [t["shard"] for fw in shards for t in fw.tasks] == [0, 1, 2]
    prescreen = by_name["motif_screen wf r1 prescreen"]
    assert sorted(wf.links.parent_links[prescreen.fw_id]) == sorted(fw.fw_id for fw in shards)
    previous_collect = by_name["motif_screen wf r0 collect-retrain-finish"]
    assert all(wf.links.parent_links[fw.fw_id] == [previous_collect.fw_id] for fw in shards)
    assert previous_collect.spec["_category"] == "gpu" and "_category" not in prescreen.spec
