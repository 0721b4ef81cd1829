"""Consent decisions per second, and the latency a disclosure (decide + redact) adds to a read.

    .venv/bin/python bench/consent.py [--seconds 1.0] [--repeats 5] [--samples 20000]

Pinned to one CPU. The child has 20 consents of 5 provisions each (four top-level provisions,
one of them with a nested deny), granted by the Procuraduría to 10 agencies and 2 legal
representatives; the requests mix those 12 actors, the three actions, four purposes and three
category sets (432 request shapes). Figures:

- ``decide`` with the child's ConsentSet compiled once (as the hub caches it per child): the
  steady state, where a repeated question is answered from the set's memory;
- the same with ``remember=False``: every verdict worked out afresh;
- compiling the ConsentSet (what the hub pays once after a consent changes);
- disclosure: ``decide`` + ``redact`` of ``typical.json`` for a legal representative, as
  per-call latency percentiles, and ``redact`` alone.

Rates are the best of ``--repeats`` timed runs of about ``--seconds`` each, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

# This script is called consent.py: keep its own folder from shadowing the consent package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

from consent import (
    ACTIONS,
    CATEGORIES,
    DEFAULT_RULE_SET,
    Actor,
    ActorRef,
    ChildFacts,
    Consent,
    ConsentSet,
    Grantor,
    Period,
    Provision,
    Request,
    decide,
    redact,
)
from schemas import default_registry
from schemas.registry import EXAMPLES_DIR

CHILD_ID = "ch-7f3a9d2e"
CHILD = ChildFacts(
    child_id=CHILD_ID,
    date_of_birth=date(2008, 7, 2),
    accompaniment="unaccompanied",
    international_protection=True,
    countries_of_origin=frozenset({"HN"}),
    custodians=(),
)
NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
YEAR = Period(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
PROCURADURIA = Grantor("procuraduria", agency_id="mx.chp.procuraduria", identity_verified=True)
AGENCIES = [
    ("state_dif", "mx.cmx.dif"),
    ("state_dif", "mx.oax.dif"),
    ("municipal_dif", "mx.chp.tapachula.dif"),
    ("refugee_commission", "mx.fed.comar"),
    ("federal_child_protection", "mx.fed.pfpnna"),
    ("health_service", "mx.chp.salud"),
    ("education_service", "mx.chp.sep"),
    ("civil_society", "mx.chp.casa-ejemplo"),
    ("international_organisation", "un.acnur.mx"),
    ("immigration_enforcement", "mx.fed.inm"),
]
LAWYERS = ["lr-0001", "lr-0002"]
PURPOSES = ["case_management", "legal_representation", "asylum_procedure", "health_care"]
ALL = frozenset(CATEGORIES)
CATEGORY_SETS = [
    frozenset({"identity", "legal_status"}),
    frozenset({"identity", "family", "health", "contact_location"}),
    ALL,
]


def make_consents(seed: int = 7) -> list[Consent]:
    """20 consents of 5 provisions each: 4 top-level, the first with a nested deny."""
    rng = random.Random(seed)
    refs = [ActorRef(agency_id=agency) for _, agency in AGENCIES]
    refs += [ActorRef(person_id=person) for person in LAWYERS]
    result = []
    for index in range(20):
        grantees = tuple(rng.sample(refs, 2))

        def provision(decision: str, grantees: tuple[ActorRef, ...] = grantees) -> Provision:
            return Provision(
                decision,
                actors=(rng.choice(grantees),),
                actions=frozenset(rng.sample(ACTIONS, rng.randint(1, 2))),
                purposes=frozenset(rng.sample(PURPOSES, 2)),
                categories=frozenset(rng.sample(CATEGORIES, rng.randint(2, 6))),
            )

        nested = Provision("deny", categories=frozenset(rng.sample(CATEGORIES, 2)))
        first = provision("permit")
        first = Provision(**{**first.__dict__, "provisions": (nested,)})
        result.append(
            Consent(
                "active",
                CHILD_ID,
                PROCURADURIA,
                "deny",
                id=f"cons-{index:02d}",
                grantees=grantees,
                period=YEAR,
                provisions=(first, provision("permit"), provision("deny"), provision("permit")),
            )
        )
    return result


def make_requests() -> list[Request]:
    actors = [Actor(kind, agency_id=agency) for kind, agency in AGENCIES]
    actors += [
        Actor(
            "legal_representative",
            agency_id="mx.ngo.clinica",
            person_id=person,
            roles=frozenset({"legal_representative"}),
        )
        for person in LAWYERS
    ]
    return [
        Request(actor, CHILD_ID, action, purpose, categories)
        for actor in actors
        for action in ACTIONS
        for purpose in PURPOSES
        for categories in CATEGORY_SETS
    ]


def rate(batch: Callable[[], int], seconds: float, repeats: int) -> tuple[float, float]:
    """Best operations per second of wall-clock time, and per second of this thread's CPU
    time (which a busy neighbour on a shared machine does not take away); ``batch`` does some
    operations and returns how many."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds / 2:  # warm-up
        batch()
    best_wall = best_cpu = 0.0
    for _ in range(repeats):
        done, started, cpu = 0, time.perf_counter(), time.thread_time()
        while time.perf_counter() - started < seconds:
            done += batch()
        best_wall = max(best_wall, done / (time.perf_counter() - started))
        best_cpu = max(best_cpu, done / max(time.thread_time() - cpu, 1e-9))
    return best_wall, best_cpu


def latencies(function: Callable[[], object], samples: int) -> str:
    """Per-call latency percentiles of ``function`` (wall clock, and this thread's CPU time),
    after a warm-up."""
    for _ in range(1000):
        function()
    wall, cpu = [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for _ in range(samples):
        started, cpu_started = clock(), cpu_clock()
        function()
        cpu.append(cpu_clock() - cpu_started)
        wall.append(clock() - started)
    wall.sort()
    cpu.sort()

    def at(timings: list[int], quantile: float) -> float:
        return timings[min(len(timings) - 1, int(quantile * len(timings)))] / 1000

    return (
        f"p50 {at(wall, 0.5):6.1f} µs  p99 {at(wall, 0.99):7.1f} µs  max {wall[-1] / 1000:8.1f} µs"
        f"  | CPU p99 {at(cpu, 0.99):6.1f} µs"
    )


def show_rate(label: str, rates: tuple[float, float], unit: str = "/s") -> None:
    wall, cpu = rates
    print(f"{label:<37}{wall:>10,.0f}{unit}   (per CPU second: {cpu:>10,.0f}{unit})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20000)
    options = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, pinned to one")

    consents = make_consents()
    requests = make_requests()
    provisions = sum(
        len(consent.provisions) + sum(len(p.provisions) for p in consent.provisions)
        for consent in consents
    )
    compiled = ConsentSet(consents, child=CHILD)
    fresh = ConsentSet(consents, child=CHILD, remember=False)
    decisions = [decide(r, compiled, (), (), DEFAULT_RULE_SET, NOW) for r in requests]
    assert decisions == [decide(r, fresh, (), (), DEFAULT_RULE_SET, NOW) for r in requests]
    permitted = sum(decision.permitted for decision in decisions)
    print(
        f"{len(consents)} consents, {provisions} provisions; {len(requests)} request shapes, "
        f"{permitted} permitted (some categories)"
    )

    def steady() -> int:
        for request in requests:
            decide(request, compiled, (), (), DEFAULT_RULE_SET, NOW)
        return len(requests)

    def afresh() -> int:
        for request in requests:
            decide(request, fresh, (), (), DEFAULT_RULE_SET, NOW)
        return len(requests)

    def compile_set() -> int:
        ConsentSet(consents, child=CHILD)
        return 1

    seconds, repeats = options.seconds, options.repeats
    show_rate("decide, steady state (set cached)", rate(steady, seconds, repeats))
    show_rate("decide, every verdict afresh", rate(afresh, seconds, repeats))
    wall, cpu = rate(compile_set, seconds, 3)
    print(f"{'compile the ConsentSet':<37}{1e6 / wall:>10,.0f} µs  (CPU: {1e6 / cpu:,.0f} µs)")

    # Disclosure: a legal representative reads typical.json under a Procuraduría consent.
    leaves = default_registry().leaf_categories("case-record", "1")
    typical = json.loads((EXAMPLES_DIR / "case-record/1/valid/typical.json").read_text("utf-8"))
    lawyer = Actor(
        "legal_representative",
        agency_id="mx.ngo.clinica",
        person_id="lr-0003",
        roles=frozenset({"legal_representative"}),
    )
    representation = Consent(
        "active",
        CHILD_ID,
        PROCURADURIA,
        "deny",
        id="cons-lr",
        grantees=(ActorRef(role="legal_representative"),),
        period=YEAR,
        provisions=(
            Provision(
                "permit",
                actors=(ActorRef(role="legal_representative"),),
                actions=frozenset({"read"}),
                purposes=frozenset({"legal_representation"}),
                categories=ALL - {"health"},
                provisions=(Provision("deny", categories=frozenset({"contact_location"})),),
            ),
        ),
    )
    read = Request(lawyer, CHILD_ID, "read", "legal_representation", ALL)
    for remember in (True, False):
        child_set = ConsentSet([*consents, representation], child=CHILD, remember=remember)
        decision = decide(read, child_set, (), (), DEFAULT_RULE_SET, NOW)

        def disclose(child_set: ConsentSet = child_set) -> object:
            found = decide(read, child_set, (), (), DEFAULT_RULE_SET, NOW)
            return redact(typical, leaves, found.categories)

        label = "decide + redact typical.json" + ("" if remember else " (afresh)")
        print(f"{label:<37}{latencies(disclose, options.samples)}")
    _, withheld = redact(typical, leaves, decision.categories)
    print(f"  ({len(decision.categories)} categories permitted, withheld: {', '.join(withheld)})")

    def redact_only() -> object:
        return redact(typical, leaves, decision.categories)

    print(f"{'redact typical.json alone':<37}{latencies(redact_only, options.samples)}")


if __name__ == "__main__":
    main()
