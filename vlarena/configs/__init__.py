"""Hydra configs shipped with vlarena (groups env/, agent/, ...)."""
