#!/usr/bin/env bash
# The README's floor table: random, forward-only and oracle agents on val_seen and val_unseen of both
# R2R envs (default dataset, seed 0). Writes outputs/floors/<env>_<split>_<agent>/summary.json.
set -euo pipefail
for env in r2r r2r_ce; do
  for split in val_seen val_unseen; do
    for agent in random forward oracle; do
      vlarena eval env=$env split=$split agent=$agent num_envs=128 progress=false \
        out_dir=outputs/floors/${env}_${split}_${agent} hydra.run.dir=outputs/floors/hydra/${env}_${split}_${agent}
    done
  done
done
python - <<'PY'
import json, pathlib
rows = ["| env | split | agent | SR | SPL | NE (m) | OSR | TL (m) | nDTW | SDTW | episodes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
for env in ("r2r", "r2r_ce"):
    for split in ("val_seen", "val_unseen"):
        for agent in ("random", "forward", "oracle"):
            s = json.loads(pathlib.Path(f"outputs/floors/{env}_{split}_{agent}/summary.json").read_text())
            rows.append(f"| {s['env']} | {split} | {agent} | {s['success_rate']:.3f} | {s['spl']:.3f} | {s['nav_error']:.2f} | "
                        f"{s['oracle_success_rate']:.3f} | {s['trajectory_length']:.2f} | {s['ndtw']:.3f} | {s['sdtw']:.3f} | {s['num_episodes']} |")
print("\n".join(rows))
PY
