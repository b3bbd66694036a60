"""User feedback: verified answers become demonstrations, the rest waits for review.

A deployed prompt answers queries with demonstrations from a :class:`RationaleStore`.
:class:`FeedbackLog` takes what users say about those answers and keeps two rules:

* **only verified feedback with a gold label enters the store**, as a demonstration whose
  rationale an explainer writes (strategy ``"feedback"``); unverified feedback, or
  feedback with no gold label, goes to a **review queue** (a JSONL file) and never to the
  store until a reviewer approves it (:meth:`FeedbackLog.approve`);
* **usefulness** of the demonstrations that were shown: when the answer to a query turns
  out correct or wrong, each demonstration used for it gets a counter in its ``extra``
  (``extra["usefulness"] = {"correct": c, "wrong": w, "last_used": ...}``), written by an
  upsert. The id of a demonstration does not depend on ``extra`` or ``scores``, so the
  counters change and the id stays (see :attr:`Demonstration.demo_id`).
  :mod:`amplify_agents.hygiene` evicts the least useful demonstrations from them.

The review file is the log of all feedback: one JSON object per line with a ``status``
(``pending``, ``stored`` or ``rejected``); :meth:`FeedbackLog.review_queue` lists the
pending ones.

Several processes may share one review file (answering workers recording, a reviewer
approving): every read, append and rewrite holds a file lock (``<review file>.lock``,
:mod:`filelock`), so an approval's rewrite never drops an item appended meanwhile. Lines
are JSON Lines that round-trip any text (:func:`~amplify_agents.files.json_line`).

Trust boundary: ``verified`` must be a real ``bool`` (``"false"`` is refused, not taken
as true), and the query, answer and gold label are bounded by :class:`TextLimits`. A
query that carries the prompt's own cue lines cannot forge a demonstration: every prompt
layout folds them (:meth:`Frame.neutralise <amplify_agents.framing.Frame.neutralise>`).

Example:
    >>> log = FeedbackLog(store, "review.jsonl", task=task, explainer=explainer)  # doctest: +SKIP
    >>> log.record("Juan Soto hit a home run", "implausible", gold="plausible", verified=True,
    ...            demo_ids=used_ids)  # doctest: +SKIP
    >>> log.review_queue()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TextIO

from filelock import FileLock, Timeout

from amplify_agents.demonstrations import Demonstration, utc_now
from amplify_agents.errors import LabelError
from amplify_agents.explainers.base import Explainer
from amplify_agents.files import atomic_write, json_line, loads_line, read_lines
from amplify_agents.limits import DEFAULT_LIMITS, TextLimits
from amplify_agents.rationales import RationaleTemplate, write_demonstration
from amplify_agents.stores import RationaleStore, UnreadableRecordWarning
from amplify_agents.tasks import Task

__all__ = [
    "USEFULNESS_KEY",
    "FEEDBACK_STRATEGY",
    "Usefulness",
    "usefulness_of",
    "with_usage",
    "record_usage",
    "FeedbackItem",
    "FeedbackOutcome",
    "FeedbackLog",
]

log = logging.getLogger(__name__)

USEFULNESS_KEY = "usefulness"
"""Key of the usefulness counters in :attr:`Demonstration.extra`."""

FEEDBACK_STRATEGY = "feedback"
"""The ``strategy`` of demonstrations made from user feedback."""

Status = Literal["pending", "stored", "rejected"]
_STATUSES = ("pending", "stored", "rejected")


# ------------------------------------------------------------------------- usefulness
@dataclass(frozen=True)
class Usefulness:
    """How often a demonstration was shown for an answer that turned out correct / wrong."""

    correct: int = 0
    wrong: int = 0
    last_used: str | None = None

    @property
    def used(self) -> int:
        """How many judged answers the demonstration was shown for."""
        return self.correct + self.wrong

    @property
    def score(self) -> float:
        """Laplace-smoothed share of correct answers, (correct + 1) / (used + 2).

        An unused demonstration scores 0.5, so it ranks above one that was shown for
        mostly wrong answers and below one shown for mostly correct answers.
        """
        return (self.correct + 1) / (self.used + 2)


def usefulness_of(demo: Demonstration) -> Usefulness:
    """The usefulness counters stored in ``demo.extra`` (zeros when there are none)."""
    raw = demo.extra.get(USEFULNESS_KEY)
    if not isinstance(raw, dict):
        return Usefulness()
    return Usefulness(int(raw.get("correct", 0)), int(raw.get("wrong", 0)), raw.get("last_used"))


def with_usage(demo: Demonstration, *, correct: bool, when: str | None = None) -> Demonstration:
    """A copy of ``demo`` with one more correct (or wrong) use counted; its id is unchanged."""
    u = usefulness_of(demo)
    counters = {
        "correct": u.correct + int(correct),
        "wrong": u.wrong + int(not correct),
        "last_used": when or utc_now(),
    }
    return replace(demo, extra={**demo.extra, USEFULNESS_KEY: counters})


def record_usage(store: RationaleStore, demo_ids: Iterable[str], *, correct: bool) -> list[str]:
    """Count one correct (or wrong) answer for each stored demonstration in ``demo_ids``.

    Read-modify-upsert: ids that are not stored are ignored. Returns the ids updated.
    Two processes counting the same demonstration at the same moment can lose one count
    (there is no transaction around the read and the write); the counters are a
    ranking signal, not an audit trail.
    """
    demos = store.get_many(list(dict.fromkeys(demo_ids)))
    if not demos:
        return []
    when = utc_now()
    updated = [with_usage(d, correct=correct, when=when) for d in demos]
    return store.add(updated)


# --------------------------------------------------------------------------- feedback
@dataclass
class FeedbackItem:
    """One piece of feedback, as kept in the review file.

    Attributes:
        query: the user's input.
        answer: the answer the system gave.
        gold: the correct label according to the user (None when not given).
        verified: whether ``gold`` was checked (by a trusted source or a reviewer).
        user_id: who gave it.
        demo_ids: the demonstrations that were in the prompt of the answer.
        created_at: when it was recorded (ISO-8601, UTC).
        status: ``pending`` (in the review queue), ``stored`` (a demonstration was added)
            or ``rejected``.
        reason: why it is pending or rejected.
        demo_id: the demonstration made from it, once stored.
        feedback_id: a stable id of this feedback.
    """

    query: str
    answer: str
    gold: str | None = None
    verified: bool = False
    user_id: str | None = None
    demo_ids: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=utc_now)
    status: Status = "pending"
    reason: str = ""
    demo_id: str | None = None
    feedback_id: str = ""

    def __post_init__(self) -> None:
        for name in ("query", "answer"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"FeedbackItem.{name} must be a str, got {type(getattr(self, name)).__name__}.")
        _check_verified(self.verified)
        if self.status not in _STATUSES:
            raise ValueError(f"FeedbackItem.status must be one of {list(_STATUSES)}, got {self.status!r}.")
        self.demo_ids = list(self.demo_ids)
        if not self.feedback_id:
            key = json.dumps([self.query, self.answer, self.gold, self.user_id, self.created_at])
            self.feedback_id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (one line of the review file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackItem:
        """Rebuild from :meth:`to_dict` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class FeedbackOutcome:
    """What :meth:`FeedbackLog.record` or :meth:`FeedbackLog.approve` did.

    Attributes:
        item: the feedback as logged.
        stored: a demonstration was added to the store (its id is ``demo_id``).
        queued: the feedback waits in the review queue (``item.reason`` says why).
        correct: whether the answer matched the gold label (None when unknown or not counted).
        usage_updated: ids of the demonstrations whose usefulness counters changed.
    """

    item: FeedbackItem
    stored: bool
    queued: bool
    correct: bool | None
    usage_updated: list[str]

    @property
    def demo_id(self) -> str | None:
        return self.item.demo_id


class FeedbackLog:
    """Route user feedback: verified → store (with an explained rationale), unverified → review.

    Args:
        store: the rationale store the answering prompt retrieves from.
        review_path: the JSONL review file (created on first write).
        task: the task (or its name) the demonstrations belong to; a :class:`Task`
            also gives the label space that gold labels are checked against.
        explainer: writes the rationale of each stored demonstration (explaining the gold
            label). Without one, verified feedback waits in the review queue.
        labels: the label space, when ``task`` is a name (None: gold labels are not checked).
        template: the rationale template (default: the builder's choice for the explainer).
        model_id: recorded as the explained model (default: the explainer's model name).
        count_unverified: also count usefulness from unverified feedback that has a gold
            label. Off by default: an unchecked claim should not decide evictions.
        limits: the longest query (``max_input_chars``), answer and gold label accepted.
        lock_timeout: seconds to wait for the review file's lock before giving up (an
            approval holds it while its rationale is explained).
    """

    def __init__(
        self,
        store: RationaleStore,
        review_path: str | os.PathLike[str],
        *,
        task: Task | str = "default",
        explainer: Explainer | None = None,
        labels: Sequence[str] | None = None,
        template: str | RationaleTemplate | None = None,
        model_id: str | None = None,
        count_unverified: bool = False,
        limits: TextLimits = DEFAULT_LIMITS,
        lock_timeout: float = 60.0,
    ) -> None:
        self.store = store
        self.review_path = Path(review_path)
        self.limits = limits
        # One lock file beside the review file; flock-based, so a crashed holder frees it.
        self._lock = FileLock(f"{self.review_path}.lock", timeout=lock_timeout)
        self.task_name = task.name if isinstance(task, Task) else str(task)
        self.labels: tuple[str, ...] | None = (
            tuple(task.labels) if isinstance(task, Task) else (tuple(labels) if labels is not None else None)
        )
        self.explainer = explainer
        self._template_choice = template
        loaded = getattr(explainer, "loaded", None)
        self.model_id = model_id if model_id is not None else (getattr(loaded, "name", "") or "")
        self.count_unverified = count_unverified

    # ------------------------------------------------------------------ public
    def record(
        self,
        query: str,
        answer: str,
        gold: str | None = None,
        verified: bool = False,
        user_id: str | None = None,
        demo_ids: Sequence[str] = (),
    ) -> FeedbackOutcome:
        """Log one piece of feedback and act on it.

        Verified feedback with a gold label becomes a demonstration in the store; any
        other feedback is appended to the review queue. When the gold label is known
        (and verified, unless ``count_unverified``) the demonstrations in ``demo_ids``
        get one correct or one wrong use counted.

        Raises:
            TypeError: ``verified`` is not a bool (``"false"`` or ``1`` is refused).
            ValueError: an empty query or answer.
            InputTooLongError: a query, answer or gold label over ``limits``.
            LabelError: a gold label outside the label space.
        """
        _check_verified(verified)
        if not str(query).strip():
            raise ValueError("Feedback needs the query text: it is what a demonstration would show.")
        if not str(answer).strip():
            raise ValueError("Feedback needs the answer that was given.")
        self.limits.check("input", str(query), where="Feedback query")
        self.limits.check("answer", str(answer), where="Feedback answer")
        if gold is not None:
            gold = self._check_gold(gold)
        item = FeedbackItem(
            query=str(query),
            answer=str(answer),
            gold=gold,
            verified=verified,
            user_id=user_id,
            demo_ids=list(demo_ids),
        )
        counted = gold is not None and (verified or self.count_unverified)
        correct = self._is_correct(answer, gold) if counted and gold is not None else None
        usage = record_usage(self.store, item.demo_ids, correct=correct) if correct is not None else []

        if verified and gold is not None:
            reason = self._store_item(item)
            if reason is None:
                self._append(item)
                return FeedbackOutcome(item, stored=True, queued=False, correct=correct, usage_updated=usage)
            item.reason = reason
        elif gold is None:
            item.reason = "no gold label: a reviewer must give one"
        else:
            item.reason = "unverified gold label"
        item.status = "pending"
        self._append(item)
        return FeedbackOutcome(item, stored=False, queued=True, correct=correct, usage_updated=usage)

    def review_queue(self) -> list[FeedbackItem]:
        """The pending feedback, oldest first; :meth:`approve` and :meth:`reject` take its index."""
        return [it for it in self.items() if it.status == "pending"]

    def items(self) -> list[FeedbackItem]:
        """Every logged feedback (pending, stored and rejected), in the order recorded.

        A line that is not a feedback record is skipped with an
        :class:`~amplify_agents.stores.UnreadableRecordWarning` naming its file and line, and
        kept in the file as it is.

        Raises:
            FileEncodingError: the file is not UTF-8 (file and line named).
        """
        with self._locked():
            return self._read()

    def _read(self) -> list[FeedbackItem]:
        return self._read_all()[0]

    def _read_all(self) -> tuple[list[FeedbackItem], list[str]]:
        """The readable items, and the lines that are not (kept verbatim by :meth:`_rewrite`).

        One bad line (torn by a crash, edited by hand) must not lock the whole queue, nor be
        lost when the queue is rewritten: it is skipped with a warning and written back as is.
        """
        if not self.review_path.exists():
            return [], []
        out: list[FeedbackItem] = []
        unreadable: list[str] = []
        for n, line in read_lines(self.review_path):
            if not line.strip():
                continue
            try:
                data = loads_line(line)
                if not isinstance(data, dict):
                    raise TypeError(f"expected a JSON object, got {type(data).__name__}")
                out.append(FeedbackItem.from_dict(data))
            except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
                unreadable.append(line)
                warnings.warn(
                    f"{self.review_path}:{n}: not a feedback record ({exc}); skipped and kept as it is: "
                    "fix or delete that line.",
                    UnreadableRecordWarning,
                    stacklevel=3,
                )
        return out, unreadable

    def approve(self, i: int | str, gold: str | None = None) -> FeedbackOutcome:
        """Verify pending item ``i`` (index in :meth:`review_queue`, or its ``feedback_id``).

        ``gold`` replaces the item's gold label (required when it has none). The item is
        explained and stored, and its usefulness counts are recorded if they were not yet.

        Raises:
            IndexError / KeyError: no such pending item.
            ValueError: no gold label; LabelError: a gold label outside the label space.
        """
        # The lock is held throughout (explaining included): a record appended meanwhile
        # waits, and is not lost when the file is rewritten below.
        with self._locked():
            return self._approve(i, gold)

    def _approve(self, i: int | str, gold: str | None) -> FeedbackOutcome:
        items, unreadable = self._read_all()
        target = self._find_pending(items, i)
        new_gold = gold if gold is not None else target.gold
        if new_gold is None:
            raise ValueError(f"Feedback {target.feedback_id} has no gold label: pass gold= to approve it.")
        new_gold = self._check_gold(new_gold)
        counted_before = target.gold is not None and (target.verified or self.count_unverified)
        target.gold, target.verified = new_gold, True
        correct = self._is_correct(target.answer, new_gold)
        usage = [] if counted_before else record_usage(self.store, target.demo_ids, correct=correct)
        reason = self._store_item(target)
        if reason is not None:
            target.reason = reason
            self._rewrite(items, unreadable)
            return FeedbackOutcome(target, stored=False, queued=True, correct=correct, usage_updated=usage)
        target.reason = ""
        self._rewrite(items, unreadable)
        return FeedbackOutcome(target, stored=True, queued=False, correct=correct, usage_updated=usage)

    def reject(self, i: int | str, reason: str = "rejected by reviewer") -> FeedbackItem:
        """Mark pending item ``i`` as rejected: it leaves the queue and never enters the store."""
        with self._locked():
            items, unreadable = self._read_all()
            target = self._find_pending(items, i)
            target.status, target.reason = "rejected", reason
            self._rewrite(items, unreadable)
            return target

    # ----------------------------------------------------------------- helpers
    def _check_gold(self, gold: str) -> str:
        gold = str(gold).strip()
        if not gold:
            raise ValueError("An empty gold label: pass None when the correct answer is unknown.")
        self.limits.check("label", gold, where="Feedback gold label")
        if self.labels is not None and gold not in self.labels:
            raise LabelError(f"Gold label {gold!r} is not in the label space {list(self.labels)}.")
        return gold

    def _is_correct(self, answer: str, gold: str) -> bool:
        if self.labels is not None:
            from amplify_agents.models.parsing import parse_answer

            parsed = answer.strip() if answer.strip() in self.labels else parse_answer(answer, self.labels)
            return parsed == gold
        return answer.strip().casefold() == gold.strip().casefold()

    def _store_item(self, item: FeedbackItem) -> str | None:
        """Explain and store ``item``; return None on success, else why it was not stored."""
        if self.explainer is None:
            return "no explainer configured to write the rationale"
        assert item.gold is not None
        exp = self.explainer.explain([item.query], [item.gold])[0]
        if not exp.ok:
            return f"unusable explanation: {exp.degenerate or 'no keywords'}"
        demo = write_demonstration(
            exp,
            self.explainer,
            task=self.task_name,
            template=self._template_choice,
            strategy=FEEDBACK_STRATEGY,
            model_id=self.model_id,
            example_id="feedback-" + hashlib.sha256(item.query.encode("utf-8")).hexdigest()[:16],
            scores={"prediction": item.answer, "correct": self._is_correct(item.answer, item.gold)},
            extra={"source": "feedback", "feedback_id": item.feedback_id, "user_id": item.user_id},
        )
        existing = self.store.get(demo.demo_id)
        if existing is not None:
            # The same query and label again: keep the counters the stored copy gathered.
            demo = replace(demo, extra={**existing.extra, **demo.extra})
        [item.demo_id] = self.store.add([demo])
        item.status = "stored"
        return None

    def _find_pending(self, items: list[FeedbackItem], i: int | str) -> FeedbackItem:
        pending = [it for it in items if it.status == "pending"]
        if isinstance(i, str):
            for it in pending:
                if it.feedback_id == i:
                    return it
            raise KeyError(f"No pending feedback with id {i!r}.")
        if not -len(pending) <= i < len(pending):
            raise IndexError(f"Review queue index {i} out of range: {len(pending)} item(s) pending.")
        return pending[i]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.review_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise TimeoutError(
                f"{self._lock.lock_file}: another process held the review file's lock for over "
                f"{self._lock.timeout} s; wait for it (an approval explains while holding it) or "
                f"raise FeedbackLog(lock_timeout=...)."
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    def _append(self, item: FeedbackItem) -> None:
        line = json_line(item.to_dict()).encode("utf-8")
        with self._locked(), self.review_path.open("ab") as fh:
            if fh.tell() > 0 and not _ends_with_newline(self.review_path):
                line = b"\n" + line  # a torn last line (a crash mid-write) stays alone on its line
            fh.write(line)  # one write of bytes: no partial line left for a reader to see
            fh.flush()
            os.fsync(fh.fileno())

    def _rewrite(self, items: list[FeedbackItem], unreadable: Sequence[str] = ()) -> None:
        # Temporary file + rename: an interrupted approval never truncates the log; lines this
        # version cannot read are written back verbatim, never dropped.
        def write(fh: TextIO) -> None:
            for it in items:
                fh.write(json_line(it.to_dict()))
            for line in unreadable:
                fh.write(line + "\n")

        atomic_write(self.review_path, write)


def _check_verified(verified: object) -> None:
    if not isinstance(verified, bool):
        raise TypeError(
            f"verified must be True or False, got {verified!r} ({type(verified).__name__}): "
            "pass a real bool (a string such as 'false' would otherwise count as verified)."
        )


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
