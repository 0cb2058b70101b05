"""The modular ALFRED agent (FILM's recipe, with ground-truth perception): a trained language module turns the
instruction into the task (parser.py), the task fixes its interaction steps (subgoals.py), and a planner
carries them out on the semantic map the agent builds from its own frames (grid.py, executor.py), exploring
for what it has not seen. `agent.ModularAgent(parser).act` runs it on `vlarena/ALFRED-v0`;
`vlarena parser` trains the language module and `vlarena eval env=alfred checkpoint=<parser dir>` scores it.
"""
