"""AMPLIFY inside LangChain agents (``langchain.agents.create_agent``).

* :class:`AmplifyMiddleware`: demonstrations retrieved for the latest user message, put into
  every model request (system prompt or few-shot messages), optionally recording the agent's
  answers as unverified feedback;
* :class:`AmplifyMiddlewareSettings`: where and how they are placed.
"""

from amplify_agents.agents.middleware import AmplifyMiddleware, AmplifyMiddlewareSettings, Placement

__all__ = ["AmplifyMiddleware", "AmplifyMiddlewareSettings", "Placement"]
