"""The public API stays flat, explicit and importable."""

from __future__ import annotations

import subprocess
import sys

import amplify_agents


def test_every_public_name_resolves() -> None:
    for name in amplify_agents.__all__:
        assert getattr(amplify_agents, name) is not None, name


def test_all_is_explicit_and_sorted() -> None:
    names = [n for n in amplify_agents.__all__ if n != "__version__"]
    assert names == sorted(names) and len(names) == len(set(names))
    assert "AmplifyExampleSelector" in names and "RationaleStore" in names


def test_import_is_lazy() -> None:
    code = "import sys, amplify_agents; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        amplify_agents.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
