"""What the hub holds and has yet to do, as Prometheus gauges read when ``/metrics`` is asked:
the outbox by status (notifications piling up or dying), the audit entries not yet in the tree,
the log's size against its latest signed checkpoint, and the peers' witnesses: how many refuse
this hub's log (a hub restored from an old backup that forked it) and the size each last
cosigned (labelled by the peer's hub id, which is no child's or record's). Read from the
database at each scrape, so every worker answers the same, and nothing is counted twice across
workers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from exchange.audit_log import AuditEntry
from exchange.audit_queries import latest_checkpoint_size, log_size
from exchange.outbox import STATUSES, OutboxMessage
from exchange.witnessing import witness_standings

_log = logging.getLogger("puente.metrics")


class HubState(Collector):
    """The gauges, from one short session; none when the database cannot be read (the HTTP
    metrics still answer, and /readyz says what is wrong)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.sessions() as session:
                by_status = dict(
                    session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    ).all()
                )
                unsequenced = session.scalar(
                    select(func.count()).select_from(AuditEntry).where(AuditEntry.idx.is_(None))
                )
                size, signed = log_size(session), latest_checkpoint_size(session) or 0
                witnesses = witness_standings(session)
        except SQLAlchemyError as error:
            _log.warning("hub metrics not read: %s", type(error).__name__)
            return
        outbox = GaugeMetricFamily(
            "puente_outbox_messages", "Notifications in the outbox, by status", labels=["status"]
        )
        # Every status, each given even when no message is in it: a 0, not a gap in a graph.
        for status in dict.fromkeys((*STATUSES, *by_status)):
            outbox.add_metric([status], by_status.get(status, 0))
        yield outbox
        yield GaugeMetricFamily(
            "puente_audit_entries_unsequenced",
            "Audit entries written but not yet in the log's tree",
            value=unsequenced or 0,
        )
        yield GaugeMetricFamily(
            "puente_audit_log_size", "Entries in the audit log's tree", value=size
        )
        yield GaugeMetricFamily(
            "puente_audit_checkpoint_size",
            "Entries covered by the latest signed checkpoint",
            value=signed,
        )
        # Given even with no peer (0), so that an alert on it never sees a gap.
        yield GaugeMetricFamily(
            "puente_witness_conflicts",
            "Peer witnesses refusing this hub's checkpoints: they cosigned another tree of "
            "this log",
            value=sum(witness.refuses for witness in witnesses),
        )
        cosigned = GaugeMetricFamily(
            "puente_witness_cosigned_size",
            "Entries covered by the latest checkpoint of this hub each peer's witness cosigned",
            labels=["peer"],
        )
        for witness in witnesses:
            cosigned.add_metric([witness.peer_hub_id], witness.cosigned_size)
        yield cosigned
