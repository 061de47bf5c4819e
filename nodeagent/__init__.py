"""nodeagent: a small container orchestrator agent on Trio."""

__version__ = "0.1.0"
