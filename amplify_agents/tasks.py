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
import io
import json
import math
import os
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn

from amplify_agents.errors import TaskFormatError
from amplify_agents.files import loads_line, read_lines, read_text
from amplify_agents.limits import DEFAULT_LIMITS, TextField, TextLimits

__all__ = ["Example", "GoldMarks", "RecordColumns", "Task", "TaskSplits", "RowProblem", "load_task"]

OnError = Literal["raise", "skip"]
GoldMarks = tuple[str, ...] | tuple[tuple[int, int], ...]
"""A gold rationale as marks on an input: its words, or ``(start, end)`` character spans."""


@dataclass(frozen=True)
class Example:
    """One labelled example.

    Attributes:
        id: stable identifier, unique within its task.
        input: the input text (what a demonstration shows and what gets explained).
        label: the gold label, a member of the task's label space.
        choices: this example's own answer options when they differ from the task's.
        rationale: a free-text gold rationale when the data has one.
        gold_rationale: the gold rationale as marks on the input: words of the input, or
            ``(start, end)`` character spans of it (UIMER's proxy training reads these, see
            :mod:`amplify_agents.models.uimer`; a word not in the input or a span out of range is
            reported there, per example, not refused here).
        fields: any other columns of the source row.
    """

    id: str
    input: str
    label: str
    choices: tuple[str, ...] | None = None
    rationale: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    gold_rationale: GoldMarks | None = None


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
        rationale: a gold rationale: text (:attr:`Example.rationale`), or a list of the input's
            words or of ``[start, end]`` character spans, also as a JSON list in a CSV cell
            (:attr:`Example.gold_rationale`); None: never read.
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
        self,
        row: Mapping[str, Any],
        row_no: int,
        label_space: tuple[str, ...] | None,
        seen_ids: set[str],
        limits: TextLimits = DEFAULT_LIMITS,
    ) -> Example | RowProblem:
        """One record as an :class:`Example`, or the :class:`RowProblem` that keeps it out.

        A field that is not text (a list, an object, ``true``), a text over its
        ``limits``, a gold label outside the label space or a duplicate id is a problem.
        """
        text, why = _text_field(row, self.input, "input", limits, field_kind="input")
        if why:
            return RowProblem(row_no, why)
        gold, why = _text_field(row, self.label, "gold label", limits, field_kind="label")
        if why:
            return RowProblem(row_no, why)
        marks = _gold_marks(row.get(self.rationale) if self.rationale else None)
        if isinstance(marks, str):
            return RowProblem(row_no, f"rationale (column {self.rationale!r}) {marks}")
        rationale, why = "", None
        if marks is None:
            rationale, why = _text_field(
                row, self.rationale, "rationale", limits, field_kind="rationale", required=False
            )
        elif any(isinstance(m, str) and (why := limits.problem("rationale", m)) for m in marks):
            why = f"a rationale word (column {self.rationale!r}): {why}"
        if why:
            return RowProblem(row_no, why)
        choices = _as_choices(row.get(self.choices)) if self.choices else None
        if isinstance(choices, str):
            return RowProblem(row_no, f"choices (column {self.choices!r}) {choices}")
        too_long = next((p for c in choices or () if (p := limits.problem("label", c))), None)
        if too_long:
            return RowProblem(row_no, f"a choice: {too_long}")
        options = choices or label_space
        if options is not None and gold not in options:
            return RowProblem(row_no, f"gold label {gold!r} is not in the label space {list(options)}")
        raw_id = row.get(self.id)
        ex_id = str(raw_id) if raw_id not in (None, "") else _content_id(text, gold)
        if ex_id in seen_ids:
            return RowProblem(row_no, f"duplicate id {ex_id!r}")
        known = {self.input, self.label, self.id, self.choices, self.rationale}
        return Example(
            id=ex_id,
            input=text,
            label=gold,
            choices=choices,
            rationale=rationale or None,
            fields={k: v for k, v in row.items() if k not in known},
            gold_rationale=marks,
        )


def _text_field(
    row: Mapping[str, Any],
    column: str | None,
    what: str,
    limits: TextLimits,
    *,
    field_kind: TextField,
    required: bool = True,
) -> tuple[str, str | None]:
    """``(text, None)`` for the text in ``column``, or ``("", why)`` when it cannot be used.

    Numbers are read as their text (a JSONL label ``1`` is ``"1"``); a list, an object or a
    boolean is refused rather than turned into its Python ``repr``.
    """
    value = row.get(column) if column else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return "", (f"missing {what} (column {column!r})" if required else None)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return "", f"{what} (column {column!r}) is {type(value).__name__} {_short(value)}, not text"
    text = value if isinstance(value, str) else str(value)
    too_long = limits.problem(field_kind, text)
    return (text, None) if too_long is None else ("", f"{what} (column {column!r}): {too_long}")


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


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
        limits: TextLimits = DEFAULT_LIMITS,
    ) -> Task:
        """Build a task from dict-like records (a list of dicts, JSONL rows, CSV rows).

        ``columns`` names the fields that hold the input, the gold label, the id, the
        choices and the rationale (every other field goes to :attr:`Example.fields`). The
        label space is ``labels`` when given, else the labels seen, in order of first
        appearance. Rows with no input, no gold label, a gold label outside the label space,
        a duplicate id, a field that is not text or a text over ``limits`` are problems:
        raised together (default) or skipped. No record holding the input or label column
        at all is an error naming the columns found.
        """
        source = _Source(
            name,
            labels=None if labels is None else tuple(str(x) for x in labels),
            instruction=instruction,
            input_prefix=input_prefix,
            output_prefix=output_prefix,
        )
        rows = [(first_row + i, row) for i, row in enumerate(records)]
        return _assemble(cls, source, rows, [], columns, on_error=on_error, limits=limits)

    @classmethod
    def from_bigbench(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        labels: Sequence[str] | None = None,
        on_error: OnError = "raise",
        limits: TextLimits = DEFAULT_LIMITS,
    ) -> Task:
        """Load a BIG-bench ``task.json``: the keys of ``target_scores`` are the label space.

        The gold label is the key with the highest score (it must be unique and > 0; every
        score must be a number). The label space is ``labels`` when given, else the key set
        that more than half of the examples score; an example scoring other keys is a
        problem (a typo there must not widen the label space). Only when no key set holds
        such a majority is the task taken to have per-example choices (each example keeps
        its own keys, :meth:`labels_for`), and the label space is their union.
        """
        path = Path(path)
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
            raise TaskFormatError(f"{path} is not a BIG-bench task: it needs an 'examples' list.")
        task_name = name or str(data.get("name") or path.parent.name or path.stem)
        scored = [_target_scores(ex) for ex in data["examples"]]
        space = tuple(str(x) for x in labels) if labels is not None else _majority_keys(scored)
        rows: list[tuple[int, dict[str, Any]]] = []
        bad: list[RowProblem] = []
        for i, (ex, scores) in enumerate(zip(data["examples"], scored), start=1):
            record = scores if isinstance(scores, str) else _bigbench_record(ex, scores, space)
            if isinstance(record, str):
                bad.append(RowProblem(i, record))
            else:
                rows.append((i, {"id": str(ex.get("id", f"{task_name}-{i}")), **record}))
        source = _Source(
            task_name,
            labels=space,
            instruction=_framing_text(data, "task_prefix", "", path),
            input_prefix=_framing_text(data, "example_input_prefix", "\nQ: ", path),
            output_prefix=_framing_text(data, "example_output_prefix", "\nA: ", path),
            origin=str(path),
        )
        task = _assemble(cls, source, rows, bad, RecordColumns(), on_error=on_error, limits=limits)
        if space is None:  # per-example choices: the label space is their union
            task = replace(task, labels=tuple(dict.fromkeys(c for e in task.examples for c in e.choices or ())))
        return task

    @classmethod
    def from_jsonl(cls, path: str | Path, *, name: str | None = None, **kwargs: Any) -> Task:
        """Load a JSON-lines file, one example object per line (see :meth:`from_records`).

        Lines are split on ``"\\n"`` only, so a U+2028 inside a string stays in its text; an
        empty line, invalid JSON, JSON nested too deeply or a value that is not an object
        is a problem of its line. A file that is not UTF-8 raises
        :class:`~amplify_agents.errors.FileEncodingError` naming the line.
        """
        path = Path(path)
        rows: list[tuple[int, Mapping[str, Any]]] = []
        bad: list[RowProblem] = []
        for line_no, line in read_lines(path):
            if not line.strip():
                bad.append(RowProblem(line_no, "empty line"))
                continue
            try:
                obj = loads_line(line)
            except json.JSONDecodeError as exc:
                bad.append(RowProblem(line_no, f"invalid JSON ({exc.msg} at column {exc.colno})"))
                continue
            except ValueError as exc:  # nested too deeply
                bad.append(RowProblem(line_no, f"invalid JSON ({exc})"))
                continue
            if isinstance(obj, dict):
                rows.append((line_no, obj))
            else:
                bad.append(RowProblem(line_no, f"a JSON {type(obj).__name__}, not an object"))
        return _load_rows(cls, path, rows, bad, name, kwargs)

    @classmethod
    def from_csv(cls, path: str | Path, *, name: str | None = None, **kwargs: Any) -> Task:
        """Load a CSV file with a header row; row numbers count data rows from 1.

        A header without the input or label column is an error naming the columns it has;
        a row with more fields than the header is a problem of its row; a file that is not
        UTF-8 raises :class:`~amplify_agents.errors.FileEncodingError` naming the line.
        """
        path = Path(path)
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        rows: list[tuple[int, Mapping[str, Any]]] = []
        bad: list[RowProblem] = []
        try:
            for row_no, row in enumerate(reader, start=1):
                extra = row.pop(None, None)  # type: ignore[call-overload]  # DictReader's restkey
                if extra:
                    width = len(reader.fieldnames or ())
                    bad.append(RowProblem(row_no, f"{len(extra)} field(s) more than the header's {width} columns"))
                else:
                    rows.append((row_no, row))
        except csv.Error as exc:
            raise TaskFormatError(f"{path}:{reader.line_num}: not readable as CSV ({exc}).") from None
        return _load_rows(cls, path, rows, bad, name, kwargs)


@dataclass(frozen=True)
class _Source:
    """A task as a loader read it, before its rows are checked: name, framing, given labels."""

    name: str
    labels: tuple[str, ...] | None = None
    instruction: str = ""
    input_prefix: str = "\nQ: "
    output_prefix: str = "\nA: "
    origin: str = ""
    """The file it came from, for messages ("" for records)."""

    @property
    def where(self) -> str:
        return f"Task {self.name!r}" + (f" ({self.origin})" if self.origin else "")


def _assemble(
    cls: type[Task],
    source: _Source,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    bad: Sequence[RowProblem],
    columns: RecordColumns,
    *,
    on_error: OnError,
    limits: TextLimits,
) -> Task:
    """The task of ``rows`` (numbered records) and ``bad`` (rows a loader could not parse)."""
    if not rows and not bad:
        raise TaskFormatError(f"{source.where} has no examples: the source is empty.")
    _check_source(source, limits)
    if rows:
        _check_columns(source, [r for _, r in rows], columns)
    examples: list[Example] = []
    problems = list(bad)
    seen_ids: set[str] = set()
    for row_no, row in rows:
        read = columns.read(row, row_no, source.labels, seen_ids, limits)
        if isinstance(read, RowProblem):
            problems.append(read)
        else:
            seen_ids.add(read.id)
            examples.append(read)
    problems.sort(key=lambda p: p.row)
    if problems and on_error == "raise":
        _raise_malformed(source.where, problems)
    if not examples:
        raise TaskFormatError(f"{source.where} has no valid examples: {_listing(problems)}.", problems)
    return cls(
        name=source.name,
        labels=source.labels or tuple(dict.fromkeys(e.label for e in examples)),
        examples=tuple(examples),
        instruction=source.instruction,
        input_prefix=source.input_prefix,
        output_prefix=source.output_prefix,
        problems=tuple(problems),
    )


def _check_source(source: _Source, limits: TextLimits) -> None:
    """The task-wide texts: the given label space and the framing, each within its limit."""
    for what, text in (
        ("instruction", source.instruction),
        ("input prefix", source.input_prefix),
        ("output prefix", source.output_prefix),
    ):
        problem = limits.problem("instruction", text)
        if problem:
            raise TaskFormatError(f"{source.where}: the {what}: {problem}.")
    if source.labels is None:
        return
    labels = source.labels
    if not labels or any(not label.strip() for label in labels):
        raise TaskFormatError(f"{source.where}: the label space {list(labels)} has an empty label.")
    twice = sorted(label for label, n in Counter(labels).items() if n > 1)
    if twice:
        raise TaskFormatError(f"{source.where}: the label space lists {twice} more than once.")
    too_long = next((p for label in labels if (p := limits.problem("label", label))), None)
    if too_long:
        raise TaskFormatError(f"{source.where}: a label of the label space: {too_long}.")


def _check_columns(source: _Source, rows: Sequence[Mapping[str, Any]], columns: RecordColumns) -> None:
    """No row at all has the input (or label) column: name it and the columns there are."""
    found = list(dict.fromkeys(str(k) for r in rows for k in r))
    missing = [c for c in (columns.input, columns.label) if all(c not in r for r in rows)]
    if missing:
        shown = ", ".join(repr(c) for c in found[:20]) + (f" (and {len(found) - 20} more)" if len(found) > 20 else "")
        raise TaskFormatError(
            f"{source.where}: no {' and no '.join(repr(c) for c in missing)} column; the rows have "
            f"{shown or 'no columns'}. Rename the columns, or name them (input_key=, label_key=)."
        )


def _load_rows(
    cls: type[Task],
    path: Path,
    rows: list[tuple[int, Mapping[str, Any]]],
    bad: list[RowProblem],
    name: str | None,
    kwargs: dict[str, Any],
) -> Task:
    """A JSONL or CSV loader's rows as a task; ``kwargs`` are :meth:`Task.from_records`' options."""
    columns = RecordColumns.pop_from(kwargs)
    on_error: OnError = kwargs.pop("on_error", "raise")
    limits: TextLimits = kwargs.pop("limits", DEFAULT_LIMITS)
    labels = kwargs.pop("labels", None)
    framing = {k: kwargs.pop(k) for k in ("instruction", "input_prefix", "output_prefix") if k in kwargs}
    if kwargs:
        raise TypeError(f"Unexpected task loader option(s): {', '.join(sorted(kwargs))}.")
    source = _Source(
        name or path.stem,
        labels=None if labels is None else tuple(str(x) for x in labels),
        origin=str(path),
        **framing,
    )
    return _assemble(cls, source, rows, bad, columns, on_error=on_error, limits=limits)


def _listing(problems: Sequence[RowProblem], first: int = 20) -> str:
    """``row 2: ...; row 5: ...`` for the first problems, and how many more there are."""
    listing = "; ".join(str(p) for p in problems[:first])
    return listing + (f" (and {len(problems) - first} more)" if len(problems) > first else "")


def _raise_malformed(where: str, problems: Sequence[RowProblem]) -> NoReturn:
    """The error that lists a task's malformed rows (the first 20)."""
    raise TaskFormatError(
        f"{where}: {len(problems)} malformed row(s): {_listing(problems)}. "
        f"Fix them, or pass on_error='skip' to load the rest.",
        list(problems),
    )


# ------------------------------------------------------------------------ file reading
def _read_json(path: Path) -> Any:
    """A JSON file's value; invalid or too deeply nested JSON is a :class:`TaskFormatError`."""
    # JSON holds line breaks only between tokens, where "\r\n" and "\n" mean the same.
    text = "\n".join(line for _, line in read_lines(path))
    try:
        return loads_line(text)
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
    except ValueError as exc:  # nested too deeply
        raise TaskFormatError(f"{path}: not readable: {exc}.") from None


def _framing_text(data: Mapping[str, Any], key: str, default: str, path: Path) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise TaskFormatError(f"{path}: {key!r} is {_short(value)}, not text.")
    return value


# ------------------------------------------------------------------------ BIG-bench rows
def _target_scores(example: Any) -> dict[str, float] | str:
    """An example's ``target_scores`` as label -> score, or why it has none usable."""
    if not isinstance(example, dict):
        return f"the example is a JSON {type(example).__name__}, not an object"
    scores = example.get("target_scores")
    if not isinstance(scores, dict) or not scores:
        return "no target_scores: the example has no gold label"
    for key, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"target_scores[{key!r}] is {_short(value)}, not a number"
    return {str(k): float(v) for k, v in scores.items()}


def _majority_keys(scored: Sequence[dict[str, float] | str]) -> tuple[str, ...] | None:
    """The key set more than half of the scored examples share (in its first example's order),
    or None when there is none: a task whose examples each have their own choices."""
    key_sets = [frozenset(s) for s in scored if isinstance(s, dict)]
    if not key_sets:
        return None
    common, count = Counter(key_sets).most_common(1)[0]
    if 2 * count <= len(key_sets):
        return None
    return next(tuple(s) for s in scored if isinstance(s, dict) and frozenset(s) == common)


def _bigbench_record(example: dict[str, Any], scores: dict[str, float], space: tuple[str, ...] | None) -> Any:
    """The record of one scored example, or (a str) why it cannot be one."""
    if space is not None and set(scores) != set(space):
        return f"target_scores labels {list(scores)} differ from the task's label space {list(space)}"
    best = max(scores.values())
    golds = [k for k, v in scores.items() if v == best]
    if best <= 0 or len(golds) != 1:
        return f"target_scores {scores} has no unique gold label"
    record: dict[str, Any] = {"input": example.get("input"), "label": golds[0]}
    if space is None:
        record["choices"] = tuple(scores)
    return record


def _as_choices(value: Any) -> tuple[str, ...] | str | None:
    """An example's own options: a list, a JSON list or ``a|b|c``; a string says why not."""
    if value in (None, "") or value == []:
        return None
    if isinstance(value, str):
        try:
            value = loads_line(value)
        except ValueError:  # not JSON (or nested too deeply): the a|b|c form
            value = [v.strip() for v in value.split("|")]
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        return f"is {_short(value)}: give a list of labels, a JSON list or a|b|c"
    return tuple(str(v) for v in value) or None


def _gold_marks(value: Any) -> GoldMarks | str | None:
    """A rationale given as marks (a list of words or of ``[start, end]`` spans, or that list as
    JSON text); None when the value is text (or absent); a string says why the list is unusable.

    Only the shape is checked here: whether the words occur in the input and the spans fit it is
    UIMER's to report per example (:func:`amplify_agents.models.uimer.gold_spans`).
    """
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = loads_line(value)
        except ValueError:
            return None  # text that happens to start with "[": a free-text rationale
    if not isinstance(value, (list, tuple)):
        return None
    if all(isinstance(v, str) for v in value):
        return tuple(value)
    if all(
        isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
        for v in value
    ):
        return tuple((int(v[0]), int(v[1])) for v in value)
    return f"is {_short(value)}: give text, a list of the input's words or a list of [start, end] character spans"


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
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    on_error: OnError = "raise",
    limits: TextLimits = DEFAULT_LIMITS,
    **kwargs: Any,
) -> Task:
    """Load a task file by its extension: BIG-bench ``.json``, ``.jsonl`` or ``.csv``.

    A directory is taken to hold a BIG-bench ``task.json``. ``labels=`` fixes the label
    space of any file (a row whose gold label is outside it is a problem). The column
    names (``columns=RecordColumns(...)`` or ``input_key=``, ``label_key=``, ``id_key=``,
    ``choices_key=``, ``rationale_key=``) and the framing go to the JSONL/CSV loaders.
    ``limits`` bounds every text a row brings (see :class:`~amplify_agents.limits.TextLimits`).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "task.json"
    if not path.exists():
        raise FileNotFoundError(f"Task file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        labels = kwargs.pop("labels", None)
        if kwargs:
            raise TypeError(f"{', '.join(sorted(kwargs))}: options of .jsonl and .csv files, not of {path}.")
        return Task.from_bigbench(path, name=name, labels=labels, on_error=on_error, limits=limits)
    if suffix == ".jsonl":
        return Task.from_jsonl(path, name=name, on_error=on_error, limits=limits, **kwargs)
    if suffix == ".csv":
        return Task.from_csv(path, name=name, on_error=on_error, limits=limits, **kwargs)
    raise TaskFormatError(f"Unknown task file type {suffix!r} for {path}: use .json (BIG-bench), .jsonl or .csv.")
