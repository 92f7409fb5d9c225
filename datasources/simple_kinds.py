"""The event kinds declared in the simple form: each one model and one ``SimpleKind``.

A kind here is complete with its block below, its table in ``datasources.models`` (and its
migration), its two UI strings and its row in docs/events.md: ``datasources.events`` adds its
model to the ``Event`` union, ``datasources.ingest.store_simple`` stores it,
``datasources.kinds`` projects it and reads it back for the rebuild, and
``datasources.simulator`` mixes its sample into the stories (docs/architecture.md, "Adding an
event kind").
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import StringConstraints

from datasources.eventbase import Id, SimpleKind, VillageEvent
from datasources.models import Mediation, VillageNotice

# --- mediation.closed ---------------------------------------------------------------------------


class MediationClosed(VillageEvent):
    """A mediation team closed a dispute."""

    kind: Literal["mediation.closed"]
    team: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    outcome: Literal["settled", "referred"]


MEDIATION_CLOSED = SimpleKind(
    model=MediationClosed,
    table=Mediation,
    time_column="closed_at",
    columns={"team": "team", "outcome": "outcome"},
    counts=(("mediations", 1),),
    sample={
        "team": lambda rng: "五老调解队",
        "outcome": lambda rng: "settled" if rng.random() < 0.92 else "referred",
    },
    share=0.03,
)

# --- notice.posted ------------------------------------------------------------------------------

_NOTICES = ("秋季防火安全提示", "新风超市兑换时间调整", "村民代表大会通知", "医保缴费提醒")


class NoticePosted(VillageEvent):
    """A village posted a notice on its notice board."""

    kind: Literal["notice.posted"]
    notice: Id
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]


NOTICE_POSTED = SimpleKind(
    model=NoticePosted,
    table=VillageNotice,
    time_column="posted_at",
    columns={"notice": "notice_id", "title": "title"},
    feed=("title",),
    sample={
        "notice": lambda rng: "N" + uuid.uuid4().hex[:12],
        "title": lambda rng: rng.choice(_NOTICES),
    },
    share=0.005,
)

# Every simple kind, in storing order.
SIMPLE_KINDS: tuple[SimpleKind, ...] = (MEDIATION_CLOSED, NOTICE_POSTED)
