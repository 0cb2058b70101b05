"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _subnormals_kept():
    """`vlarena.cli.main` flushes subnormal floats for its process; tests that call it in-process must not leave
    that on for the others (hypothesis checks that subnormals exist)."""
    yield
    torch.set_flush_denormal(False)
