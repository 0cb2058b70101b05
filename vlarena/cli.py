"""The `vlarena` command.

    vlarena demo [--task ObjectNav] [--out DIR] [--episode N] [--resolution PX] [--device cpu|cuda]
    vlarena data generate [--seed N] [--data-dir DIR] [--no-vlnce] [--overwrite]
    vlarena data demos --out DIR [--env R2R] [--split train] [--keys rgb,...] [--set width=32 ...]
    vlarena data alfred --out DIR [--split train|valid_seen|valid_unseen|test] [--episodes N] [--start K]
    vlarena eval env=r2r|r2r_ce|alfred agent=oracle|random|forward split=val_unseen [key=value ...]   (hydra)
    vlarena train experiment=<name> | env=... policy=... agent=bc|dagger|ppo [key=value ...]   (hydra)
    vlarena pretrain method=clip|mae|moco|vqvae [key=value ...]   (hydra: an encoder for policy.vision.weights)
    vlarena speaker --out DIR [--encoder PATH]   (speaker-augmented R2R train split: env.kwargs.dataset.data_dir=DIR)
    vlarena parser --data DIR --out DIR   (the modular ALFRED agent's language module: eval env=alfred checkpoint=DIR)
    vlarena quickstart [key=value ...]   (hydra: train experiment=quickstart, evaluate, floors, GIF)
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
    if argv[:1] == ["demos"]:
        return _demos(argv[1:])
    if argv[:1] == ["alfred"]:
        return _alfred(argv[1:])
    parser = argparse.ArgumentParser(prog="vlarena data", description="Generate and cache the R2R-style splits "
                                     "(generate), record the expert's episodes for behaviour cloning (demos), or write ALFRED-style "
                                     "traj_data splits (alfred).")
    parser.add_argument("action", choices=["generate", "demos", "alfred"])
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--data-dir", default=None, help="cache root (default $VLARENA_DATA_DIR or ~/.cache/vlarena)")
    parser.add_argument("--no-vlnce", action="store_true", help="skip the VLN-CE episode and ground-truth files")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if the cache has this dataset")
    parser.add_argument("--aug-scenes", type=int, default=0, help="extra training scenes (30 paths each) for the "
                        "split train_aug, as env.kwargs.dataset.aug_scenes (default 0: none)")
    args = parser.parse_args(argv)
    from vlarena.datasets.r2r import read_r2r
    from vlarena.datasets.r2r_splits import R2RSplitConfig
    from vlarena.datasets.store import generate_r2r

    config = R2RSplitConfig(seed=args.seed, aug_scenes=args.aug_scenes)
    folder = generate_r2r(config, args.data_dir, vlnce=not args.no_vlnce, overwrite=args.overwrite)
    counts = {s: len(read_r2r(folder / f"R2R_{s}.json")) for s in config.split_names()}
    print(f"R2R splits (paths, 3 instructions each): {counts}")
    print(f"in {folder}")
    return 0


def _alfred(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlarena data alfred", description="Write ALFRED-style episodes "
                                     "(traj_data.json, each solved by the expert) of one split under OUT/<split>/.")
    parser.add_argument("--out", required=True, help="the dataset folder")
    parser.add_argument("--split", default="train", help="train (default), valid_seen, valid_unseen or test")
    parser.add_argument("--episodes", type=int, default=100, help="episodes to write (default 100)")
    parser.add_argument("--start", type=int, default=0, help="index of the first episode (default 0): processes "
                        "writing disjoint ranges into one folder generate a split in parallel")
    args = parser.parse_args(argv)
    from vlarena.envs.household.generate import generate_split

    paths = generate_split(args.split, args.episodes, args.out, args.start)
    print(f"{len(paths)} {args.split} episodes in {paths[0].parent.parent}")
    return 0


def _speaker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlarena speaker", description="Train a speaker on R2R's train paths and "
                                     "write a copy of the dataset whose train split gains new paths with speaker "
                                     "instructions (vlarena/agents/speaker_aug.py).")
    parser.add_argument("--out", required=True, help="a data dir: train with env.kwargs.dataset.data_dir=OUT")
    parser.add_argument("--encoder", help="a ViT from `vlarena pretrain` (<run>/encoder.safetensors)")
    parser.add_argument("--data-dir", help="where the source dataset is (default $VLARENA_DATA_DIR or ~/.cache)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--new-paths-per-scene", type=int, default=30)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from vlarena.agents.speaker_aug import SpeakerAugConfig, run_speaker_augmentation

    summary = run_speaker_augmentation(SpeakerAugConfig(
        out=args.out, encoder=args.encoder, dataset={"data_dir": args.data_dir} if args.data_dir else {},
        epochs=args.epochs, new_paths_per_scene=args.new_paths_per_scene, temperature=args.temperature,
        seed=args.seed, device=args.device))
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


def _parser(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlarena parser", description="Train the modular ALFRED agent's language "
                                     "module (instruction -> task type and arguments) on a `vlarena data alfred` "
                                     "folder; evaluate the agent with `vlarena eval env=alfred checkpoint=OUT`.")
    parser.add_argument("--data", required=True, help="a `vlarena data alfred` folder with a train split")
    parser.add_argument("--out", required=True, help="the folder to write parser.json and parser.safetensors to")
    parser.add_argument("--episodes", type=int, default=None, help="train on the first N episodes (default: all)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-episodes", type=int, default=200,
                        help="valid_seen / valid_unseen episodes generated in memory to report accuracy on")
    args = parser.parse_args(argv)
    import time

    from vlarena.agents.modular.parser import TaskParser, exact_match, instruction_rows
    from vlarena.envs.alfred_env import AlfredEnvConfig, load_episodes

    rows = instruction_rows(load_episodes(AlfredEnvConfig(data_dir=args.data, num_episodes=args.episodes)))
    start = time.time()
    task_parser = TaskParser.train(rows, epochs=args.epochs, seed=args.seed)
    print(f"trained on {len(rows)} instructions in {time.time() - start:.0f} s; wrote {task_parser.save(args.out)}")
    for split in ("valid_seen", "valid_unseen"):
        check = instruction_rows([e for e in load_episodes(AlfredEnvConfig(split=split,
                                                                           num_episodes=args.check_episodes)) if e])
        print(f"{split}: tasks parsed exactly {exact_match(task_parser, check):.3f} ({len(check)} instructions)")
    return 0


def _env_setting(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set takes key=value (an env keyword argument), got {text!r}")
    return key, yaml.safe_load(value)


def _demos(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlarena data demos", description="Record the env's expert on every "
                                     "episode of a split into a demo folder (vlarena/agents/demos.py) that "
                                     "`vlarena train ... demos=DIR` replays for behaviour cloning.")
    parser.add_argument("--out", required=True, help="the demo folder to write (replaced atomically)")
    parser.add_argument("--env", default="R2R", help="a native vlarena task: R2R (default), R2R-CE, ObjectNav")
    parser.add_argument("--split", default="train", help="the split whose episodes are recorded (default train)")
    parser.add_argument("--keys", default=None, help="comma-separated observation keys to record (default: all)")
    parser.add_argument("--max-episodes", type=int, default=None, help="record only the first N episodes")
    parser.add_argument("--num-envs", type=int, default=64, help="envs run in parallel (default 64)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--set", type=_env_setting, action="append", default=[], metavar="KEY=VALUE",
                        help="an env keyword argument, as in the env config (e.g. --set width=32); repeatable")
    args = parser.parse_args(argv)
    import gymnasium as gym

    import vlarena.envs
    from vlarena.agents.demos import collect_demos

    env_id = vlarena.envs.check_task(args.env)
    kwargs = dict(args.set)
    env = gym.make_vec(env_id, num_envs=args.num_envs, split=args.split, device=args.device, **kwargs)
    keys = args.keys.split(",") if args.keys else None
    meta = {"env": env_id, "env_kwargs": kwargs, "split": args.split}
    out = collect_demos(env, args.out, meta, keys=keys, max_episodes=args.max_episodes)
    env.close()
    from vlarena.agents.demos import read_demos

    meta, _ = read_demos(out)
    print(f"{len(meta['episode_ids'])} expert episodes, {meta['num_steps']} steps of {env_id} {args.split} "
          f"(success {sum(meta['success']) / max(1, len(meta['success'])):.3f}) in {out}")
    return 0


def _hydra(name: str, *defaults: str):
    def run(argv: list[str]) -> int:
        from vlarena import hydra_main

        sys.argv = [f"vlarena {name}", *defaults, *argv]
        getattr(hydra_main, f"{name}_main")()
        return 0

    return run


COMMANDS = {"demo": _demo, "data": _data, "eval": _hydra("eval"), "train": _hydra("train"),
            "quickstart": _hydra("quickstart", "experiment=quickstart"), "pretrain": _hydra("pretrain"),
            "speaker": _speaker, "parser": _parser}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print(f"commands: {', '.join(COMMANDS)}")
        return 0
    command, rest = argv[0], argv[1:]
    import torch

    # subnormal floats flushed to zero, set before torch starts its worker threads: they inherit it from this one
    # (set later, it holds in this thread alone). Denormal arithmetic had made long CPU training runs 4x slower per
    # update (docs/benchmarks.md). A process setting, so the CLI makes it, not the library.
    torch.set_flush_denormal(True)
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
