"""Batched simulator, tasks and gymnasium registration."""
