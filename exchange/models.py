"""Tables of the hub. Each area adds its models here (or in a module imported here)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base


class HubSetting(Base):
    """Facts about this hub recorded at ``puente init`` (hub id, creation time)."""

    __tablename__ = "hub_setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


# Every area's tables, so Alembic and create_all see them all.
from exchange import (  # noqa: E402, F401
    agencies,
    audit_log,
    auth,
    children,
    consent_store,
    federation_received,
    federation_referrals,
    oauth,
    outbox,
    peers,
    people,
    records,
    sharing,
    witness_service,
    witnessing,
)
