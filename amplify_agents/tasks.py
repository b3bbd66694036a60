"""Tasks: labelled multiple-choice examples, their loaders and deterministic splits.

A :class:`Task` holds a label space and examples; it knows nothing of models.
Loaders read BIG-bench ``task.json`` files, JSONL, CSV and plain Python records.
Malformed rows are collected as :class:`RowProblem` s with their row numbers; the
caller chooses to fail (``on_error="raise"``, the default) or to skip them, and
the skipped rows stay visible in :attr:`Task.problems`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn

from amplify_agents.errors import TaskFormatError

__all__ = ["Example", "RecordColumns", "Task", "TaskSplits", "RowProblem", "load_task"]

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class Example:
    """One labelled example.

    Attributes:
        id: stable identifier, unique within its task.
        input: the input text (what a demonstration shows and what gets explained).
        label: the gold label, a member of the task's label space.
        choices: this example's own answer options when they differ from the task's.
        rationale: a gold rationale when the data has one (used by UIMER-style training).
        fields: any other columns of the source row.
    """

    id: str
    input: str
    label: str
    choices: tuple[str, ...] | None = None
    rationale: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowProblem:
    """A malformed row: where it is and what is wrong with it."""

    row: int
    """1-based position of the row in its source (line number for JSONL, data row for CSV)."""
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass(frozen=True)
class RecordColumns:
    """Which field of a record holds what, for :meth:`Task.from_records` and the JSONL/CSV loaders.

    Attributes:
        input / label / id: the input text, the gold label, the example id (a missing id
            becomes a hash of input and label).
        choices: the example's own answer options (a list, JSON or ``a|b|c``); None: never read.
        rationale: a gold rationale; None: never read.
    """

    input: str = "input"
    label: str = "label"
    id: str = "id"
    choices: str | None = "choices"
    rationale: str | None = "rationale"

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> RecordColumns:
        """The columns a loader's keyword arguments name (``input_key=``, ``label_key=``, ...,
        as :func:`load_task` takes them), removed from ``kwargs``; ``columns=`` is taken as is."""
        columns = kwargs.pop("columns", None) or cls()
        names = {f"{key}_key": key for key in ("input", "label", "id", "choices", "rationale")}
        given = {names[k]: kwargs.pop(k) for k in list(kwargs) if k in names}
        return replace(columns, **given)

    def read(
        self, row: Mapping[str, Any], row_no: int, label_space: tuple[str, ...] | None, seen_ids: set[str]
    ) -> Example | RowProblem:
        """One record as an :class:`Example`, or the :class:`RowProblem` that keeps it out."""
        text, gold = row.get(self.input), row.get(self.label)
        if text is None or not str(text).strip():
            return RowProblem(row_no, f"missing input (column {self.input!r})")
        if gold is None or str(gold).strip() == "":
            return RowProblem(row_no, f"missing gold label (column {self.label!r})")
        choices = _as_choices(row.get(self.choices)) if self.choices else None
        options = choices or label_space
        if options is not None and str(gold) not in options:
            return RowProblem(row_no, f"gold label {gold!r} is not in the label space {list(options)}")
        raw_id = row.get(self.id)
        ex_id = str(raw_id) if raw_id not in (None, "") else _content_id(str(text), str(gold))
        if ex_id in seen_ids:
            return RowProblem(row_no, f"duplicate id {ex_id!r}")
        rationale = row.get(self.rationale) if self.rationale else None
        known = {self.input, self.label, self.id, self.choices, self.rationale}
        return Example(
            id=ex_id,
            input=str(text),
            label=str(gold),
            choices=choices,
            rationale=None if rationale in (None, "") else str(rationale),
            fields={k: v for k, v in row.items() if k not in known},
        )


@dataclass(frozen=True)
class Task:
    """A multiple-choice task: a label space and labelled examples.

    Attributes:
        name: short name, used in store metadata and ids.
        labels: the label space, in a fixed order.
        examples: the examples.
        instruction: the task's instruction or prefix ("" when none).
        input_prefix / output_prefix: how the task file frames an input and its answer
            (BIG-bench ``example_input_prefix`` / ``example_output_prefix``).
        problems: rows that were skipped while loading.
    """

    name: str
    labels: tuple[str, ...]
    examples: tuple[Example, ...]
    instruction: str = ""
    input_prefix: str = "\nQ: "
    output_prefix: str = "\nA: "
    problems: tuple[RowProblem, ...] = ()

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    def labels_for(self, example: Example) -> tuple[str, ...]:
        """The answer options that apply to ``example``."""
        return example.choices or self.labels

    def with_examples(self, examples: Iterable[Example]) -> Task:
        """A copy of this task holding ``examples`` (same name, labels, framing)."""
        return replace(self, examples=tuple(examples), problems=())

    # ------------------------------------------------------------------ splits
    def split(
        self,
        *,
        seed: int = 0,
        test: int | float = 0.5,
        validation: int | float = 0.0,
        pool: int | float | None = None,
    ) -> TaskSplits:
        """Split deterministically into demo pool, validation and test.

        Sizes are counts (int) or fractions of the task (float). The pool gets what is
        left unless ``pool`` is given. The order depends only on ``seed`` and the
        example ids, never on the input order of the file.
        """
        n = len(self.examples)

        def size(value: int | float) -> int:
            return int(round(value * n)) if isinstance(value, float) else int(value)

        n_test, n_val = size(test), size(validation)
        n_pool = n - n_test - n_val if pool is None else size(pool)
        if min(n_test, n_val, n_pool) < 0 or n_test + n_val + n_pool > n:
            raise ValueError(
                f"Split sizes test={n_test}, validation={n_val}, pool={n_pool} do not fit "
                f"in the {n} examples of task {self.name!r}."
            )
        # Sort by id first so the split is independent of the file's order.
        ordered = sorted(self.examples, key=lambda e: e.id)
        random.Random(seed).shuffle(ordered)
        test_part = ordered[:n_test]
        val_part = ordered[n_test : n_test + n_val]
        pool_part = ordered[n_test + n_val : n_test + n_val + n_pool]
        return TaskSplits(
            pool=self.with_examples(pool_part),
            validation=self.with_examples(val_part),
            test=self.with_examples(test_part),
            seed=seed,
        )

    def split_for_proxy(self, fraction: float, *, seed: int = 0) -> tuple[Task, Task]:
        """(proxy training part, selection part): AMPLIFY fine-tunes its proxy on the first and
        selects demonstrations from the second only, so the proxy never ranks its own training
        data. Seeded, independent of file order, both parts non-empty."""
        if len(self.examples) < 2:
            raise ValueError(f"Task {self.name!r} has {len(self.examples)} example(s): a proxy split needs two.")
        ordered = list(self.split(seed=seed, test=0, validation=0, pool=len(self.examples)).pool)
        n_train = max(1, min(len(ordered) - 1, round(fraction * len(ordered))))
        return self.with_examples(ordered[:n_train]), self.with_examples(ordered[n_train:])

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        name: str,
        labels: Sequence[str] | None = None,
        columns: RecordColumns = RecordColumns(),
        instruction: str = "",
        input_prefix: str = "\nQ: ",
        output_prefix: str = "\nA: ",
        on_error: OnError = "raise",
        first_row: int = 1,
    ) -> Task:
        """Build a task from dict-like records (a list of dicts, JSONL rows, CSV rows).

        ``columns`` names the fields that hold the input, the gold label, the id, the
        choices and the rationale (every other field goes to :attr:`Example.fields`). The
        label space is ``labels`` when given, else the labels seen, in order of first
        appearance. Rows with no input, no gold label, a gold label outside the label space
        or a duplicate id are problems: raised together (default) or skipped.
        """
        rows = list(records)
        if not rows:
            raise TaskFormatError(f"Task {name!r} has no examples: the source is empty.")
        label_space = tuple(str(x) for x in labels) if labels is not None else None
        examples: list[Example] = []
        problems: list[RowProblem] = []
        seen_ids: set[str] = set()
        for offset, row in enumerate(rows):
            read = columns.read(row, first_row + offset, label_space, seen_ids)
            if isinstance(read, RowProblem):
                problems.append(read)
            else:
                seen_ids.add(read.id)
                examples.append(read)
        if problems and on_error == "raise":
            _raise_malformed(name, problems)
        if not examples:
            raise TaskFormatError(f"Task {name!r} has no valid examples.", problems)
        if label_space is None:
            label_space = tuple(dict.fromkeys(e.label for e in examples))
        return cls(
            name=name,
            labels=label_space,
            examples=tuple(examples),
            instruction=instruction,
            input_prefix=input_prefix,
            output_prefix=output_prefix,
            problems=tuple(problems),
        )

    @classmethod
    def from_bigbench(cls, path: str | Path, *, name: str | None = None, on_error: OnError = "raise") -> Task:
        """Load a BIG-bench ``task.json``: the keys of ``target_scores`` are the label space.

        The gold label is the key with the highest score (it must be unique and > 0).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TaskFormatError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
            raise TaskFormatError(f"{path} is not a BIG-bench task: it needs an 'examples' list.")
        task_name = name or str(data.get("name") or path.parent.name or path.stem)
        records: list[dict[str, Any]] = []
        label_order: dict[str, None] = {}
        pre_problems: list[RowProblem] = []
        for i, ex in enumerate(data["examples"], start=1):
            scores = ex.get("target_scores") if isinstance(ex, dict) else None
            if not isinstance(scores, dict) or not scores:
                pre_problems.append(RowProblem(i, "no target_scores: the example has no gold label"))
                records.append({"input": (ex or {}).get("input") if isinstance(ex, dict) else None, "label": None})
                continue
            for key in scores:
                label_order.setdefault(str(key), None)
            best = max(scores.values())
            golds = [k for k, v in scores.items() if v == best]
            if best <= 0 or len(golds) != 1:
                pre_problems.append(RowProblem(i, f"target_scores {scores} has no unique gold label"))
                records.append({"input": ex.get("input"), "label": None})
                continue
            records.append(
                {
                    "id": str(ex.get("id", f"{task_name}-{i}")),
                    "input": ex.get("input"),
                    "label": str(golds[0]),
                    "choices": tuple(str(k) for k in scores),
                }
            )
        # Labels constant across examples → one label space and no per-example choices.
        all_choices = {r.get("choices") for r in records if r.get("choices")}
        shared = len(all_choices) == 1
        if shared:
            for r in records:
                r.pop("choices", None)
        task = _with_parse_problems(
            cls,
            records,
            pre_problems,
            task_name,
            {
                "labels": tuple(label_order) if shared else None,
                "instruction": str(data.get("task_prefix", "")),
                "input_prefix": str(data.get("example_input_prefix", "\nQ: ")),
                "output_prefix": str(data.get("example_output_prefix", "\nA: ")),
                "on_error": on_error,
            },
        )
        return task if shared else replace(task, labels=tuple(label_order))

    @classmethod
    def from_jsonl(cls, path: str | Path, *, name: str | None = None, **kwargs: Any) -> Task:
        """Load a JSON-lines file, one example object per line (see :meth:`from_records`)."""
        path = Path(path)
        records: list[dict[str, Any]] = []
        bad: list[RowProblem] = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                records.append({})
                bad.append(RowProblem(line_no, "empty line"))
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj = {}
                bad.append(RowProblem(line_no, f"invalid JSON ({exc.msg})"))
            records.append(obj if isinstance(obj, dict) else {})
        return _with_parse_problems(cls, records, bad, name or path.stem, kwargs)

    @classmethod
    def from_csv(cls, path: str | Path, *, name: str | None = None, **kwargs: Any) -> Task:
        """Load a CSV file with a header row; row numbers count data rows from 1."""
        path = Path(path)
        with path.open(newline="", encoding="utf-8") as fh:
            records = [dict(row) for row in csv.DictReader(fh)]
        return _with_parse_problems(cls, records, [], name or path.stem, kwargs)


def _with_parse_problems(
    cls: type[Task], records: list[dict[str, Any]], bad: list[RowProblem], name: str, kwargs: dict[str, Any]
) -> Task:
    on_error: OnError = kwargs.pop("on_error", "raise")
    if not records:
        raise TaskFormatError(f"Task {name!r} has no examples: the source is empty.")
    columns = RecordColumns.pop_from(kwargs)
    task = cls.from_records(records, name=name, columns=columns, on_error="skip", **kwargs)
    by_row = {p.row: p for p in task.problems}
    by_row.update({p.row: p for p in bad})
    problems = sorted(by_row.values(), key=lambda p: p.row)
    if problems and on_error == "raise":
        _raise_malformed(name, problems)
    return replace(task, problems=tuple(problems))


def _raise_malformed(name: str, problems: Sequence[RowProblem]) -> NoReturn:
    """The error that lists a task's malformed rows (the first 20)."""
    listing = "; ".join(str(p) for p in problems[:20])
    more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
    raise TaskFormatError(
        f"Task {name!r}: {len(problems)} malformed row(s): {listing}{more}. "
        f"Fix them, or pass on_error='skip' to load the rest.",
        list(problems),
    )


def _as_choices(value: Any) -> tuple[str, ...] | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [v.strip() for v in value.split("|")]
    return tuple(str(v) for v in value) or None


def _content_id(text: str, label: str) -> str:
    return hashlib.sha256(f"{text}\x1f{label}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TaskSplits:
    """The three disjoint parts of a task: demo pool, validation and test."""

    pool: Task
    validation: Task
    test: Task
    seed: int


def load_task(
    path: str | os.PathLike[str], *, name: str | None = None, on_error: OnError = "raise", **kwargs: Any
) -> Task:
    """Load a task file by its extension: BIG-bench ``.json``, ``.jsonl`` or ``.csv``.

    A directory is taken to hold a BIG-bench ``task.json``. Extra keyword arguments
    (``labels``, the column names as ``columns=RecordColumns(...)`` or ``input_key=``,
    ``label_key=``, ``id_key=``, ``choices_key=``, ``rationale_key=``) go to the JSONL/CSV loaders.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "task.json"
    if not path.exists():
        raise FileNotFoundError(f"Task file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return Task.from_bigbench(path, name=name, on_error=on_error)
    if suffix == ".jsonl":
        return Task.from_jsonl(path, name=name, on_error=on_error, **kwargs)
    if suffix == ".csv":
        return Task.from_csv(path, name=name, on_error=on_error, **kwargs)
    raise TaskFormatError(f"Unknown task file type {suffix!r} for {path}: use .json (BIG-bench), .jsonl or .csv.")
