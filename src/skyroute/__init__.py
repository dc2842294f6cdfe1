"""skyroute: a multi-cloud LLM gateway."""

__version__ = "0.1.0"
