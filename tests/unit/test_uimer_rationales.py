"""UIMER's gold rationales without a model: reading them from task files, mapping them onto the
input, refusing bad settings and method names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amplify_agents.eval.methods import parse_method
from amplify_agents.models.uimer import UimerSettings, gold_spans
from amplify_agents.tasks import Task, load_task

TEXT = "Tuesday: the zebra met a Zebra near the river"


def test_words_map_to_every_whole_word_occurrence_case_insensitively() -> None:
    spans = gold_spans(TEXT, ("zebra",))
    assert [TEXT[a:b] for a, b in spans] == ["zebra", "Zebra"]
    assert gold_spans("zebras and a zebra", ("zebra",)) == ((13, 18),)  # not inside "zebras"


def test_spans_are_kept_and_checked_against_the_input() -> None:
    assert gold_spans(TEXT, ((13, 18),)) == ((13, 18),)
    assert "out of range" in str(gold_spans(TEXT, ((40, 99),)))
    assert "out of range" in str(gold_spans(TEXT, ((5, 5),)))


@pytest.mark.parametrize(
    ("marks", "reason"),
    [((), "empty"), (("walrus",), "'walrus' is not in the input"), (("  ",), "blank")],
)
def test_unusable_rationales_say_why(marks: tuple, reason: str) -> None:
    problem = gold_spans(TEXT, marks)
    assert isinstance(problem, str) and reason in problem


def test_task_files_carry_words_spans_or_text(tmp_path: Path) -> None:
    rows = [
        {"id": "w", "input": TEXT, "label": "A", "rationale": ["zebra"]},
        {"id": "s", "input": TEXT, "label": "A", "rationale": [[13, 18]]},
        {"id": "t", "input": TEXT, "label": "B", "rationale": "because of the river"},
        {"id": "n", "input": TEXT, "label": "B"},
        {"id": "bad-word", "input": TEXT, "label": "B", "rationale": ["walrus"]},  # reported by UIMER, not here
    ]
    path = tmp_path / "task.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = load_task(path)
    by_id = {e.id: e for e in task.examples}
    assert by_id["w"].gold_rationale == ("zebra",) and by_id["w"].rationale is None
    assert by_id["s"].gold_rationale == ((13, 18),)
    assert by_id["t"].rationale == "because of the river" and by_id["t"].gold_rationale is None
    assert by_id["n"].gold_rationale is None
    assert by_id["bad-word"].gold_rationale == ("walrus",)


def test_a_csv_cell_can_hold_a_json_list(tmp_path: Path) -> None:
    path = tmp_path / "task.csv"
    path.write_text(
        'input,label,rationale\n"the zebra ran",A,"[""zebra""]"\n"[a] note",B,"[not json"\n', encoding="utf-8"
    )
    task = load_task(path)
    assert task.examples[0].gold_rationale == ("zebra",)
    assert task.examples[1].rationale == "[not json" and task.examples[1].gold_rationale is None


def test_a_rationale_of_mixed_marks_is_a_row_problem() -> None:
    with pytest.raises(Exception, match=r"row 1: rationale .*list of \[start, end\]"):
        Task.from_records([{"input": TEXT, "label": "A", "rationale": ["zebra", [1, 2]]}], name="t")
    with pytest.raises(Exception, match="row 1: rationale"):
        Task.from_records([{"input": TEXT, "label": "A", "rationale": [[1, 2, 3]]}], name="t")


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "xx"}, {"alpha": -1.0}, {"warmup_epochs": -1}, {"margin": -0.5}, {"extractor_lr": 0.0}],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        UimerSettings(**kwargs)


def test_method_names_name_the_proxy_training() -> None:
    spec = parse_method("amplify:grad_x_input:error:uimer-gb+xyr")
    assert spec.proxy_training == "uimer-gb" and spec.placement == "xyr"
    assert spec.base == "amplify:grad_x_input:error:uimer-gb"
    assert parse_method("amplify:grad_x_input:error").proxy_training is None
    with pytest.raises(ValueError, match="Unknown proxy training 'uimer-xx'"):
        parse_method("amplify:grad_x_input:error:uimer-xx")
    with pytest.raises(ValueError, match="Unknown method"):
        parse_method("self:gradient_x_activation:error:uimer-gb")


def test_eval_config_keeps_the_rationale_store_through_its_json_form() -> None:
    from amplify_agents.eval import EvalConfig

    config = EvalConfig(task="t.json", rationale_store=["gold-dir", "gold"], uimer_alpha=0.5, uimer_warmup=1)
    again = EvalConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.rationale_store == ("gold-dir", "gold") and again == config
