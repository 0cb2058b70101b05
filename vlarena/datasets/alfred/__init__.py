"""ALFRED-style household tasks as data: object types and affordances, the seven task types, the
expert's high-level plans (pure Python, no torch). The batched world they act on is
`vlarena.envs.household`."""
