"""Serving local models over HTTP: a small OpenAI-compatible server (for tests and demos)."""

from amplify_agents.serving.openai_server import (
    TRANSCRIPT_STOPS,
    ServerHandle,
    ServerLimits,
    render_transcript,
    serve,
)

__all__ = ["ServerHandle", "ServerLimits", "TRANSCRIPT_STOPS", "render_transcript", "serve"]
