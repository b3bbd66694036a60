"""The README's examples and examples/*.py use the flat public API only.

A name a new user copies from the documentation must be one the project promises to keep:
those in ``amplify_agents.__all__``, or in a submodule the README documents as public.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import amplify_agents

ROOT = Path(__file__).resolve().parents[2]
# Submodules the README documents as public (each has its own explicit __all__).
PUBLIC_SUBMODULES = ("amplify_agents.eval", "amplify_agents.serving")


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def _sources() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [(f"README.md block {i}", code) for i, code in enumerate(_python_blocks(readme), start=1)]
    return blocks + [
        (str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in sorted(ROOT.glob("examples/*.py"))
    ]


def _imports(code: str) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "amplify_agents":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("amplify_agents.")]
    return found


def test_there_is_something_to_check() -> None:
    sources = _sources()
    assert len(sources) >= 6 and sum(len(_imports(code)) for _, code in sources) >= 10


@pytest.mark.parametrize(("where", "code"), _sources(), ids=lambda v: v if len(v) < 40 else "")
def test_documentation_imports_only_public_names(where: str, code: str) -> None:
    bad = []
    for module, name in _imports(code):
        if module == "amplify_agents":
            if name not in amplify_agents.__all__:
                bad.append(f"{name} (not in amplify_agents.__all__)")
        elif module not in PUBLIC_SUBMODULES:
            bad.append(f"{module}.{name} (import it from amplify_agents, or document the submodule)")
        else:
            public = getattr(__import__(module, fromlist=["__all__"]), "__all__", ())
            if name and name not in public:
                bad.append(f"{module}.{name} (not in its __all__)")
    assert not bad, f"{where} imports non-public names: {bad}"
