"""vlarena: vision-language-action agents in fast batched simulated homes."""

__version__ = "0.1.0"
