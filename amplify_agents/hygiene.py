"""Store hygiene: caps per label and in total, eviction by age or usefulness, deduplication.

A store that keeps learning (feedback, :func:`~amplify_agents.improve.improve`) grows
without bound and collects near-copies of the same input. These functions keep it small
and varied:

* :func:`dedup` removes exact duplicates (identical input text) and near duplicates
  (identical :func:`normalize_text`: case, accents' composed forms, punctuation and
  spacing ignored) within one task and gold label, keeping the most useful copy;
  inputs that appear with *different* gold labels are reported as conflicts, not removed;
* :func:`cap` keeps at most ``max_per_label`` demonstrations per gold label and
  ``max_total`` in all, evicting the oldest (``evict="age"``) or the least useful
  (``evict="usefulness"``: the counters :mod:`amplify_agents.feedback` writes, oldest
  first among equals);
* :func:`enforce` runs both under one :class:`HygienePolicy`.

Every function takes ``dry_run=True`` to report what it would remove without removing it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from amplify_agents.demonstrations import Demonstration
from amplify_agents.feedback import usefulness_of
from amplify_agents.stores import RationaleStore

__all__ = ["Eviction", "HygienePolicy", "HygieneReport", "cap", "dedup", "enforce", "normalize_text"]

Eviction = Literal["age", "usefulness"]

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """The text near-duplicate detection compares: NFKC, case-folded, punctuation and spacing removed.

    ``"The  Cat, sat!"`` and ``"the cat sat"`` normalize to the same ``"the cat sat"``.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


@dataclass
class HygieneReport:
    """What a hygiene pass removed (or would remove, with ``dry_run``), and why.

    Attributes:
        removed: demo id → reason.
        examined: how many demonstrations were looked at.
        conflicts: normalized inputs stored with more than one gold label (ids per input).
        dry_run: nothing was deleted.
    """

    removed: dict[str, str] = field(default_factory=dict)
    examined: int = 0
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def kept(self) -> int:
        return self.examined - len(self.removed)

    def counts(self) -> dict[str, int]:
        """How many were removed per reason (the reason's first words, before any detail)."""
        out: dict[str, int] = defaultdict(int)
        for reason in self.removed.values():
            out[reason.split(":")[0]] += 1
        return dict(out)

    def table(self) -> str:
        """A plain-text summary."""
        verb = "would remove" if self.dry_run else "removed"
        lines = [f"examined {self.examined}, {verb} {len(self.removed)}, kept {self.kept}"]
        lines += [f"  {reason}: {n}" for reason, n in sorted(self.counts().items())]
        if self.conflicts:
            lines.append(f"  inputs stored with conflicting gold labels: {len(self.conflicts)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class HygienePolicy:
    """Limits for :func:`enforce`.

    Attributes:
        max_total: at most this many demonstrations (None: no limit).
        max_per_label: at most this many per gold label (None: no limit).
        evict: which go first when over a cap: "age" (oldest) or "usefulness" (least useful).
        dedup: remove exact and near-duplicate inputs first.
        where: a Chroma filter limiting the pass to some demonstrations (e.g. one task).
    """

    max_total: int | None = None
    max_per_label: int | None = None
    evict: Eviction = "usefulness"
    dedup: bool = True
    where: dict[str, Any] | None = None


def _eviction_key(evict: Eviction) -> Callable[[Demonstration], tuple[Any, ...]]:
    """Sort key: demonstrations that should go first sort first."""
    if evict == "age":
        return lambda d: (d.created_at, d.demo_id)
    if evict == "usefulness":
        return lambda d: (usefulness_of(d).score, d.created_at, d.demo_id)
    raise ValueError(f"Unknown eviction order {evict!r}: use 'age' or 'usefulness'.")


def _keep_key(d: Demonstration) -> tuple[Any, ...]:
    """Which duplicate to keep: the most useful, then the most used, then the newest."""
    u = usefulness_of(d)
    return (u.score, u.used, d.created_at, d.demo_id)


def _delete(store: RationaleStore, report: HygieneReport) -> HygieneReport:
    if not report.dry_run and report.removed:
        store.delete(list(report.removed))
    return report


def dedup(
    store: RationaleStore,
    *,
    where: dict[str, Any] | None = None,
    by: Sequence[str] = ("task",),
    dry_run: bool = False,
) -> HygieneReport:
    """Remove duplicate inputs: exact (same text) and near (same :func:`normalize_text`).

    Demonstrations are grouped by the fields in ``by`` (default: the task), the gold label
    and the normalized input; each group keeps its most useful member (then the most
    used, then the newest). Pass ``by=("task", "explainer")`` to keep one copy per
    explainer instead. Inputs found with different gold labels are listed in
    :attr:`HygieneReport.conflicts` and left alone.
    """
    demos = store.list(where=where)
    groups: dict[tuple[Any, ...], list[Demonstration]] = defaultdict(list)
    labels_by_text: dict[tuple[Any, ...], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for d in demos:
        scope = tuple(getattr(d, f) for f in by)
        norm = normalize_text(d.input)
        groups[(*scope, d.label, norm)].append(d)
        labels_by_text[(*scope, norm)][d.label].append(d.demo_id)
    report = HygieneReport(examined=len(demos), dry_run=dry_run)
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = max(members, key=_keep_key)
        for d in members:
            if d is keep:
                continue
            kind = "exact duplicate" if d.input == keep.input else "near duplicate"
            report.removed[d.demo_id] = f"{kind}: of {keep.demo_id}"
    for (*_, norm), by_label in labels_by_text.items():
        if len(by_label) > 1:
            report.conflicts[norm] = sorted(i for ids in by_label.values() for i in ids)
    return _delete(store, report)


def cap(
    store: RationaleStore,
    *,
    max_total: int | None = None,
    max_per_label: int | None = None,
    evict: Eviction = "usefulness",
    where: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> HygieneReport:
    """Keep at most ``max_per_label`` demonstrations per gold label and ``max_total`` in all.

    The per-label cap applies first, then the total cap evicts from the largest label
    first, so the caps never make the store less balanced than it was. Within a label,
    ``evict="age"`` removes the oldest, ``evict="usefulness"`` the lowest usefulness score
    (:attr:`~amplify_agents.feedback.Usefulness.score`; the oldest among equals).
    """
    for name, value in (("max_total", max_total), ("max_per_label", max_per_label)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}.")
    order = _eviction_key(evict)
    demos = store.list(where=where)
    report = HygieneReport(examined=len(demos), dry_run=dry_run)
    by_label: dict[str, list[Demonstration]] = defaultdict(list)
    for d in demos:
        by_label[d.label].append(d)
    for label, members in by_label.items():
        members.sort(key=order)  # first = first to go
        if max_per_label is not None and len(members) > max_per_label:
            for d in members[: len(members) - max_per_label]:
                report.removed[d.demo_id] = f"over the per-label cap: {max_per_label} for {label!r} ({evict})"
            del members[: len(members) - max_per_label]
    if max_total is not None:
        excess = sum(len(m) for m in by_label.values()) - max_total
        while excess > 0:
            # Take from the currently largest label: balance is what the selector needs.
            label = max(by_label, key=lambda lab: (len(by_label[lab]), lab))
            d = by_label[label].pop(0)
            report.removed[d.demo_id] = f"over the total cap: {max_total} ({evict})"
            excess -= 1
    return _delete(store, report)


def enforce(store: RationaleStore, policy: HygienePolicy, *, dry_run: bool = False) -> HygieneReport:
    """Apply ``policy``: :func:`dedup` (if asked), then :func:`cap`."""
    report = HygieneReport(dry_run=dry_run)
    removed_first: set[str] = set()
    if policy.dedup:
        report = dedup(store, where=policy.where, dry_run=dry_run)
        removed_first = set(report.removed)
    if policy.max_total is None and policy.max_per_label is None:
        if not policy.dedup:
            report.examined = store.count(policy.where)
        return report
    if dry_run and removed_first:
        # Nothing was deleted: cap what would remain after the dedup pass.
        remaining = [d for d in store.list(where=policy.where) if d.demo_id not in removed_first]
        second = _cap_demos(remaining, policy, dry_run=True)
    else:
        second = cap(
            store,
            max_total=policy.max_total,
            max_per_label=policy.max_per_label,
            evict=policy.evict,
            where=policy.where,
            dry_run=dry_run,
        )
    return HygieneReport(
        removed={**report.removed, **second.removed},
        examined=report.examined if policy.dedup else second.examined,
        conflicts=report.conflicts,
        dry_run=dry_run,
    )


def _cap_demos(demos: list[Demonstration], policy: HygienePolicy, *, dry_run: bool) -> HygieneReport:
    """:func:`cap` over a list already in memory (for dry runs after a dedup dry run)."""

    class _ListStore:
        def list(self, where: Any = None) -> list[Demonstration]:
            return list(demos)

        def delete(self, ids: Any) -> None:  # pragma: no cover - only used with dry_run=True
            raise AssertionError("dry run")

    return cap(
        _ListStore(),  # type: ignore[arg-type]
        max_total=policy.max_total,
        max_per_label=policy.max_per_label,
        evict=policy.evict,
        dry_run=dry_run,
    )
