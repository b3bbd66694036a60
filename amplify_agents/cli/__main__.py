"""``python -m amplify_agents.cli``: the command line, as the ``amplify-agents`` script runs it."""

import sys

from amplify_agents.cli import main

sys.exit(main())
