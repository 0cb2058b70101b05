"""The batched household world of the ALFRED-style task: object states, interactions, goal conditions."""
