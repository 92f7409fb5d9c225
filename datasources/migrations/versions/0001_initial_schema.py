"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 08:37:08.023966
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("area_code", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_ts"), ["ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_username"), ["username"], unique=False)

    op.create_table(
        "rollup_grid_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("closed_on_time", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.Column("resolved_grid", sa.Integer(), nullable=False),
        sa.Column("resolved_village", sa.Integer(), nullable=False),
        sa.Column("resolved_town", sa.Integer(), nullable=False),
        sa.Column("resolved_district", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("calls_answered", sa.Integer(), nullable=False),
        sa.Column("thumbs_up", sa.Integer(), nullable=False),
        sa.Column("thumbs_down", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "grid_code", name=op.f("pk_rollup_grid_daily")),
    )
    with op.batch_alter_table("rollup_grid_daily", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_grid_daily_town_day", ["town_code", "day"], unique=False)
        batch_op.create_index(
            "ix_rollup_grid_daily_village_day", ["village_code", "day"], unique=False
        )

    op.create_table(
        "rollup_village_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("petition_batches_district", sa.Integer(), nullable=False),
        sa.Column("petition_persons_district", sa.Integer(), nullable=False),
        sa.Column("petition_batches_city", sa.Integer(), nullable=False),
        sa.Column("petition_persons_city", sa.Integer(), nullable=False),
        sa.Column("petition_batches_province", sa.Integer(), nullable=False),
        sa.Column("petition_persons_province", sa.Integer(), nullable=False),
        sa.Column("petition_batches_national", sa.Integer(), nullable=False),
        sa.Column("petition_persons_national", sa.Integer(), nullable=False),
        sa.Column("petition_repeat", sa.Integer(), nullable=False),
        sa.Column("mediations", sa.Integer(), nullable=False),
        sa.Column("points_earned", sa.BigInteger(), nullable=False),
        sa.Column("points_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("placements_public_welfare", sa.Integer(), nullable=False),
        sa.Column("placements_doorstep", sa.Integer(), nullable=False),
        sa.Column("placements_urban", sa.Integer(), nullable=False),
        sa.Column("welfare_posts_created", sa.Integer(), nullable=False),
        sa.Column("supervision_posted", sa.Integer(), nullable=False),
        sa.Column("supervision_on_notice", sa.Integer(), nullable=False),
        sa.Column("supervision_approved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "village_code", name=op.f("pk_rollup_village_daily")),
    )
    with op.batch_alter_table("rollup_village_daily", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollup_village_daily_town_day", ["town_code", "day"], unique=False
        )

    op.create_table(
        "towns",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("centroid_lon", sa.Float(), nullable=False),
        sa.Column("centroid_lat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_towns")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=16), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "villages",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("centroid_lon", sa.Float(), nullable=False),
        sa.Column("centroid_lat", sa.Float(), nullable=False),
        sa.Column("elderly_share", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["town_code"], ["towns.code"], name=op.f("fk_villages_town_code_towns")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_villages")),
    )
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_villages_town_code"), ["town_code"], unique=False)

    op.create_table(
        "grids",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("name_en", sa.String(length=160), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("centroid_lon", sa.Float(), nullable=False),
        sa.Column("centroid_lat", sa.Float(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["town_code"], ["towns.code"], name=op.f("fk_grids_town_code_towns")
        ),
        sa.ForeignKeyConstraint(
            ["village_code"], ["villages.code"], name=op.f("fk_grids_village_code_villages")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_grids")),
    )
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grids_town_code"), ["town_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_grids_village_code"), ["village_code"], unique=False)

    op.create_table(
        "job_placements",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("job_kind", sa.String(length=16), nullable=False),
        sa.Column("employer", sa.String(length=128), nullable=False),
        sa.Column("hourly_wage", sa.Float(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
            name=op.f("fk_job_placements_village_code_villages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_placements")),
    )
    with op.batch_alter_table("job_placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_placements_placed_at"), ["placed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_placements_town_code"), ["town_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_placements_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "mediations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"], ["villages.code"], name=op.f("fk_mediations_village_code_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediations")),
    )
    with op.batch_alter_table("mediations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mediations_closed_at"), ["closed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mediations_town_code"), ["town_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mediations_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "petitions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"], ["villages.code"], name=op.f("fk_petitions_village_code_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petitions")),
    )
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petitions_filed_at"), ["filed_at"], unique=False)
        batch_op.create_index("ix_petitions_level_filed", ["level", "filed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_petitions_town_code"), ["town_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_petitions_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "points_transactions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=True),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
            name=op.f("fk_points_transactions_village_code_villages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_transactions")),
    )
    with op.batch_alter_table("points_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_transactions_grid_code"), ["grid_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_points_transactions_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_points_transactions_town_code"), ["town_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_points_transactions_ts"), ["ts"], unique=False)
        batch_op.create_index(
            "ix_points_transactions_village_ts", ["village_code", "ts"], unique=False
        )

    op.create_table(
        "public_welfare_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("placement_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
            name=op.f("fk_public_welfare_jobs_village_code_villages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_welfare_jobs")),
    )
    with op.batch_alter_table("public_welfare_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_public_welfare_jobs_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_public_welfare_jobs_town_code"), ["town_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_public_welfare_jobs_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "supervision_items",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("vote_closes", sa.Date(), nullable=False),
        sa.Column("approve", sa.Integer(), nullable=False),
        sa.Column("reject", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
            name=op.f("fk_supervision_items_village_code_villages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_items")),
        sa.UniqueConstraint("event_id", name=op.f("uq_supervision_items_event_id")),
    )
    with op.batch_alter_table("supervision_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_supervision_items_posted_at"), ["posted_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_supervision_items_town_code"), ["town_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_supervision_items_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "households",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("head_name", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("elderly", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_code"], ["grids.code"], name=op.f("fk_households_grid_code_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_households_grid_code"), ["grid_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_households_town_code"), ["town_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_households_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=True),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_code"], ["grids.code"], name=op.f("fk_staff_grid_code_grids")
        ),
        sa.ForeignKeyConstraint(
            ["town_code"], ["towns.code"], name=op.f("fk_staff_town_code_towns")
        ),
        sa.ForeignKeyConstraint(
            ["village_code"], ["villages.code"], name=op.f("fk_staff_village_code_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
    )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_grid_code"), ["grid_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_town_code"), ["town_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_village_code"), ["village_code"], unique=False)

    op.create_table(
        "supervision_votes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("approve", sa.Integer(), nullable=False),
        sa.Column("reject", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["supervision_items.id"],
            name=op.f("fk_supervision_votes_item_id_supervision_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_votes")),
    )
    with op.batch_alter_table("supervision_votes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervision_votes_item_id"), ["item_id"], unique=False)

    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("petition", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("rating", sa.String(length=16), nullable=True),
        sa.Column("resolution_level", sa.String(length=16), nullable=True),
        sa.Column("escalation_level", sa.String(length=16), nullable=True),
        sa.Column("reopened_count", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["grid_code"], ["grids.code"], name=op.f("fk_tickets_grid_code_grids")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("event_id", name=op.f("uq_tickets_event_id")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_grid_code"), ["grid_code"], unique=False)
        batch_op.create_index("ix_tickets_status", ["status"], unique=False)
        batch_op.create_index("ix_tickets_town_created", ["town_code", "created_at"], unique=False)
        batch_op.create_index(
            "ix_tickets_village_created", ["village_code", "created_at"], unique=False
        )

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["grid_code"], ["grids.code"], name=op.f("fk_devices_grid_code_grids")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_devices_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_grid_code"), ["grid_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_town_code"), ["town_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_village_code"), ["village_code"], unique=False)

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_events_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("grid_code", sa.String(length=16), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ticket_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_call_events_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_events_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_events_grid_code"), ["grid_code"], unique=False)
        batch_op.create_index("ix_call_events_town_ts", ["town_code", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_events_ts"), ["ts"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_call_events_village_code"), ["village_code"], unique=False
        )

    op.create_table(
        "device_heartbeats",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("battery", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_heartbeats_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_heartbeats")),
    )
    with op.batch_alter_table("device_heartbeats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_heartbeats_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_device_heartbeats_ts"), ["ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_heartbeats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_heartbeats_ts"))
        batch_op.drop_index(batch_op.f("ix_device_heartbeats_device_id"))

    op.drop_table("device_heartbeats")
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_events_village_code"))
        batch_op.drop_index(batch_op.f("ix_call_events_ts"))
        batch_op.drop_index("ix_call_events_town_ts")
        batch_op.drop_index(batch_op.f("ix_call_events_grid_code"))
        batch_op.drop_index(batch_op.f("ix_call_events_device_id"))

    op.drop_table("call_events")
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_events_ticket_id"))

    op.drop_table("ticket_events")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_village_code"))
        batch_op.drop_index(batch_op.f("ix_devices_town_code"))
        batch_op.drop_index(batch_op.f("ix_devices_household_id"))
        batch_op.drop_index(batch_op.f("ix_devices_grid_code"))

    op.drop_table("devices")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_village_created")
        batch_op.drop_index("ix_tickets_town_created")
        batch_op.drop_index("ix_tickets_status")
        batch_op.drop_index(batch_op.f("ix_tickets_grid_code"))
        batch_op.drop_index(batch_op.f("ix_tickets_created_at"))

    op.drop_table("tickets")
    with op.batch_alter_table("supervision_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_votes_item_id"))

    op.drop_table("supervision_votes")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_village_code"))
        batch_op.drop_index(batch_op.f("ix_staff_town_code"))
        batch_op.drop_index(batch_op.f("ix_staff_grid_code"))

    op.drop_table("staff")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_households_village_code"))
        batch_op.drop_index(batch_op.f("ix_households_town_code"))
        batch_op.drop_index(batch_op.f("ix_households_grid_code"))

    op.drop_table("households")
    with op.batch_alter_table("supervision_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_items_village_code"))
        batch_op.drop_index(batch_op.f("ix_supervision_items_town_code"))
        batch_op.drop_index(batch_op.f("ix_supervision_items_posted_at"))

    op.drop_table("supervision_items")
    with op.batch_alter_table("public_welfare_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_public_welfare_jobs_village_code"))
        batch_op.drop_index(batch_op.f("ix_public_welfare_jobs_town_code"))
        batch_op.drop_index(batch_op.f("ix_public_welfare_jobs_created_at"))

    op.drop_table("public_welfare_jobs")
    with op.batch_alter_table("points_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_points_transactions_village_ts")
        batch_op.drop_index(batch_op.f("ix_points_transactions_ts"))
        batch_op.drop_index(batch_op.f("ix_points_transactions_town_code"))
        batch_op.drop_index(batch_op.f("ix_points_transactions_household_id"))
        batch_op.drop_index(batch_op.f("ix_points_transactions_grid_code"))

    op.drop_table("points_transactions")
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petitions_village_code"))
        batch_op.drop_index(batch_op.f("ix_petitions_town_code"))
        batch_op.drop_index("ix_petitions_level_filed")
        batch_op.drop_index(batch_op.f("ix_petitions_filed_at"))

    op.drop_table("petitions")
    with op.batch_alter_table("mediations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mediations_village_code"))
        batch_op.drop_index(batch_op.f("ix_mediations_town_code"))
        batch_op.drop_index(batch_op.f("ix_mediations_closed_at"))

    op.drop_table("mediations")
    with op.batch_alter_table("job_placements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_placements_village_code"))
        batch_op.drop_index(batch_op.f("ix_job_placements_town_code"))
        batch_op.drop_index(batch_op.f("ix_job_placements_placed_at"))

    op.drop_table("job_placements")
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grids_village_code"))
        batch_op.drop_index(batch_op.f("ix_grids_town_code"))

    op.drop_table("grids")
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_villages_town_code"))

    op.drop_table("villages")
    op.drop_table("users")
    op.drop_table("towns")
    with op.batch_alter_table("rollup_village_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_village_daily_town_day")

    op.drop_table("rollup_village_daily")
    with op.batch_alter_table("rollup_grid_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_grid_daily_village_day")
        batch_op.drop_index("ix_rollup_grid_daily_town_day")

    op.drop_table("rollup_grid_daily")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_username"))
        batch_op.drop_index(batch_op.f("ix_audit_log_ts"))

    op.drop_table("audit_log")
