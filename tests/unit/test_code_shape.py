"""The package stays easy to read: short functions, and settings objects instead of long signatures.

Limits from the project's standards: no function longer than 80 lines, no public callable with
more than 12 parameters (settings belong in small frozen objects such as BuildConfig,
ImproveConfig or EvalConfig).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "amplify_agents"
MAX_LINES = 80
MAX_PARAMETERS = 12


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}", node))
    return found


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    return sum(a.arg not in ("self", "cls") for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))


def test_the_package_is_read() -> None:
    assert len(_functions()) > 300


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        (n.end_lineno - n.lineno + 1, where) for where, n in _functions() if n.end_lineno - n.lineno + 1 > MAX_LINES
    ]
    assert not long, f"functions over {MAX_LINES} lines: {sorted(long, reverse=True)}"


def test_no_public_callable_takes_more_than_12_parameters() -> None:
    wide = [
        (_parameters(n), where)
        for where, n in _functions()
        if (not n.name.startswith("_") or n.name == "__init__") and _parameters(n) > MAX_PARAMETERS
    ]
    assert not wide, f"public callables over {MAX_PARAMETERS} parameters: {sorted(wide, reverse=True)}"
