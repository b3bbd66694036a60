"""Fixtures shared by the integration modules, defined once here so that each is one instance.

A session fixture imported into several test modules is one fixture per module, each with its
own instance: three modules importing ``llama_server`` started three llama.cpp servers, alive
until the session ended, and the idle ones took CPU from every later test.
"""

from __future__ import annotations

try:
    from .llama_server import llama_server  # noqa: F401 - fixture
except ImportError:
    from llama_server import llama_server  # noqa: F401 - fixture
