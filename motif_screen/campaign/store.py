"""Campaign documents: create once (idempotent), read the spec back from any worker."""

from __future__ import annotations

from motif_screen.campaign.spec import CampaignSpec, parse_spec
from motif_screen.db.documents import Campaign, Target, utcnow
from motif_screen.errors import InputError


def save_campaign(spec: CampaignSpec) -> tuple[Campaign, bool]:
    """Create the campaign, or return the existing one if its spec is identical; returns (doc, created).

    A different spec under an existing name is refused: silently changing a running campaign
    would make its rounds incomparable.
    """
    existing = Campaign.objects(name=spec.name).first()
    config = spec.model_dump(mode="json")
    if existing is not None:
        if existing.config != config:
            raise InputError(
                f"campaign {spec.name!r} already exists with other settings; choose another --campaign name"
            )
        return existing, False
    doc = Campaign(
        name=spec.name,
        target=Target(**spec.target.model_dump()),
        budget=spec.budget,
        rounds=spec.rounds,
        candidates_per_round=spec.candidates_per_round,
        oracle=spec.oracle,
        config=config,
        status="created",
    )
    doc.save()
    return doc, True


def load_spec(name: str) -> CampaignSpec:
    doc = Campaign.objects(name=name).first()
    if doc is None:
        raise InputError(f"no campaign named {name!r} in the database")
    return parse_spec(doc.config)


def set_campaign_status(name: str, status: str) -> None:
    Campaign.objects(name=name).update_one(set__status=status, set__updated=utcnow())
