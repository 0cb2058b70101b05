"""The `vlarena` command.

    vlarena demo [--task ObjectNav] [--out DIR] [--episode N] [--resolution PX] [--device cpu|cuda]
    vlarena data generate [--seed N] [--data-dir DIR] [--no-vlnce] [--overwrite]
    vlarena eval env=r2r|r2r_ce agent=oracle|random|forward split=val_unseen [key=value ...]   (hydra)
    vlarena train experiment=<name> | env=... policy=... agent=bc|dagger|ppo [key=value ...]   (hydra)
"""

from __future__ import annotations

import argparse
import sys


def _demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlarena demo", description="Render an expert episode to a GIF and a map PNG.")
    parser.add_argument("--task", default="ObjectNav", help="task name, e.g. ObjectNav (default)")
    parser.add_argument("--out", default="vlarena_demo", help="output folder (default: vlarena_demo)")
    parser.add_argument("--episode", type=int, default=0, help="episode index in the split (default 0)")
    parser.add_argument("--split", default="val", help="train, val or test (default val)")
    parser.add_argument("--resolution", type=int, default=128, help="egocentric view size in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = parser.parse_args(argv)
    from vlarena.agents.demo import run_demo

    result = run_demo(args.task, args.out, args.episode, args.resolution, args.seed, args.split, args.device)
    print(f"instruction: {result.instruction}")
    print(f"expert: {result.steps} steps, success={result.success}, SPL={result.spl:.3f}")
    print(f"wrote {result.gif} and {result.map_png}")
    return 0


def _data(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlarena data", description="Generate and cache the R2R-style splits.")
    parser.add_argument("action", choices=["generate"])
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--data-dir", default=None, help="cache root (default $VLARENA_DATA_DIR or ~/.cache/vlarena)")
    parser.add_argument("--no-vlnce", action="store_true", help="skip the VLN-CE episode and ground-truth files")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if the cache has this dataset")
    args = parser.parse_args(argv)
    from vlarena.datasets.r2r import read_r2r
    from vlarena.datasets.r2r_splits import SPLITS, R2RSplitConfig
    from vlarena.datasets.store import generate_r2r

    folder = generate_r2r(R2RSplitConfig(seed=args.seed), args.data_dir, vlnce=not args.no_vlnce,
                          overwrite=args.overwrite)
    counts = {s: len(read_r2r(folder / f"R2R_{s}.json")) for s in SPLITS}
    print(f"R2R splits (paths, 3 instructions each): {counts}")
    print(f"in {folder}")
    return 0


def _hydra(name: str):
    def run(argv: list[str]) -> int:
        from vlarena import hydra_main

        sys.argv = [f"vlarena {name}", *argv]
        getattr(hydra_main, f"{name}_main")()
        return 0

    return run


COMMANDS = {"demo": _demo, "data": _data, "eval": _hydra("eval"), "train": _hydra("train")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print(f"commands: {', '.join(COMMANDS)}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"vlarena: unknown command {command!r}; accepted: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[command](rest)
    except ValueError as e:
        print(f"vlarena {command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
