"""The ``amplify-agents`` console script on bad usage and bad task files: one line, the right exit code.

Every test runs the real command line as a subprocess on real files in tmp_path. Bad task files
are given with ``--model`` naming a model file that does not exist: the error must be about the
task, which shows the file is refused before any model is opened (and keeps the tests fast).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "amplify-agents"
NO_MODEL = "/nonexistent/never-loaded.gguf"


def run(*args: object, columns: int = 80, script: bool = True) -> tuple[int, str, str]:
    """Run the CLI; (exit code, stdout, stderr). A narrow ``COLUMNS`` would wrap a rich message."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "amplify_agents.cli"]
    env = {**os.environ, "COLUMNS": str(columns), "AMPLIFY_AGENTS_DEBUG": ""}
    done = subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    return done.returncode, done.stdout, done.stderr


def error_line(stderr: str) -> str:
    """The one ``Error:`` line of stderr; fails if the error spans several lines."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0] == len(lines) - 1, stderr  # the last line, and alone
    assert "Traceback" not in stderr and "╭" not in stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["build", "--foo"], "Error: No such option: --foo"),
        (["frobnicate"], "Error: No such command 'frobnicate'."),
        (["build", "t.json", "--strategy", "best"], "unknown strategy 'best'; valid: error, success"),
        (["eval", "t.json", "--method"], "Option '--method' requires an argument."),
        (["build", "t.json", "--n", "many"], "Invalid value for '--n'"),
        (["build", "t.json", "--labels", "yes"], "give two or more labels"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    code, out, err = run(*args, columns=40)
    assert code == 2, err
    line = error_line(err)
    assert expected in line, line
    assert out == ""
    if args[0] == "build" and len(args) > 2:  # click knows the command: the line says where help is
        assert line.endswith("(see amplify-agents build --help)"), line


def test_python_dash_m_goes_through_the_same_handler() -> None:
    code, _, err = run("build", "--foo", script=False)
    assert code == 2 and "No such option: --foo" in error_line(err)


def _bigbench(path: Path, examples: list[object]) -> Path:
    path.write_text(json.dumps({"name": "t", "examples": examples}), encoding="utf-8")
    return path


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a bad task file, what its one-line error must say)."""
    (tmp / "cols.csv").write_text("question,answer\nIs fire hot?,yes\n", encoding="utf-8")
    (tmp / "latin1.csv").write_bytes(b"input,label\nfine,yes\ncaf\xe9,no\n")
    scores = [{"input": "a", "target_scores": {"yes": 1, "no": 0}}, {"input": "b", "target_scores": {"yes": "x"}}]
    _bigbench(tmp / "scores.json", scores)
    (tmp / "deep.json").write_text('{"examples": ' + "[" * 50_000 + "]" * 50_000 + "}", encoding="utf-8")
    long_rows = [{"input": "short", "label": "yes"}, {"input": "x" * 1_000_000, "label": "no"}]
    (tmp / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long_rows), encoding="utf-8")
    return {
        "missing columns": (tmp / "cols.csv", "no 'input' and no 'label' column; the rows have 'question', 'answer'"),
        "not utf-8": (tmp / "latin1.csv", "latin1.csv:3: not UTF-8 (byte 0xe9 at column 4)"),
        "non-numeric scores": (tmp / "scores.json", "row 2: target_scores['yes'] is 'x', not a number"),
        "deep json": (tmp / "deep.json", "nested too deeply"),
        "1 MB input": (tmp / "long.jsonl", "row 2: input (column 'input'): the input is 1,000,000 characters"),
    }


def test_bad_task_files_are_named_in_one_line_before_any_model_loads(tmp_path: Path) -> None:
    for what, (path, expected) in _bad_files(tmp_path).items():
        code, _, err = run("build", path, "-d", tmp_path / "chroma", "-n", "x-store", "--model", NO_MODEL)
        assert code == 2, (what, err)
        line = error_line(err)
        assert expected in line, (what, line)
        assert "never-loaded" not in err, what  # failed on the file, not on the model
    assert not (tmp_path / "chroma").exists()  # nothing was created for a refused file


def test_labels_refuse_rows_outside_them_and_are_printed_when_inferred(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = ["yes", "no", "maybe", "no", "Yes", "yes"]
    path.write_text("input,label\n" + "".join(f"text {i},{r}\n" for i, r in enumerate(rows)), encoding="utf-8")
    for command in (["build", path, "-d", tmp_path / "chroma", "-n", "x-store"], ["eval", path], ["improve", path]):
        code, _, err = run(*command, "--labels", "yes,no", "--model", NO_MODEL)
        line = error_line(err)
        assert code == 2, err
        assert "2 bad row(s) refused: row 3: gold label 'maybe' is not in the label space ['yes', 'no']" in line
        assert "row 5: gold label 'Yes'" in line and "outside --labels yes,no" in line
    # Without --labels the label space read from the file is shown (here: the stray labels widen it).
    code, _, err = run("build", path, "-d", tmp_path / "chroma", "-n", "x-store", "--test", "1", "--model", NO_MODEL)
    assert "label space from the file: yes, no, maybe, Yes (pass --labels to fix it)" in err
    assert code == 2 and "never-loaded" in error_line(err)  # the file was fine: the model was next
