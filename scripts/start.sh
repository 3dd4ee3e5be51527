#!/usr/bin/env bash
# `npm start`: train the reference model (models/ms-clip-gan.gan, preset cpu)
# on the synthetic shapes data, then measure how well its samples follow their
# captions. About 10 minutes on 2 CPU cores through lavapipe (README).
# Run it again after Ctrl-C and it resumes the run; once the run is complete it
# only re-measures. Delete runs/ms-clip-gan-cpu to train afresh.
set -euo pipefail
cd "$(dirname "$0")/.."

gan() { node scripts/gan.js "$@"; }
data=data/shapes
run=runs/ms-clip-gan-cpu
model=models/ms-clip-gan.gan

# The data: generated on first use into a temporary folder, renamed when whole;
# made again when it predates group ids (the preset's wrong_same_group needs
# them) or the larger shapes (shapes.json records their sizes since then).
if [ ! -f "$data/embeddings.npy" ] || ! head -n 1 "$data/captions.jsonl" | grep -q '"group"' || ! grep -q '"sizeFraction"' "$data/shapes.json"; then
  rm -rf "$data.tmp"
  gan data shapes --out "$data.tmp"
  rm -rf "$data"
  mv "$data.tmp" "$data"
fi

# Ctrl-C: the trainer finishes its step and checkpoints; we then skip the rest.
interrupted=0
trap 'interrupted=1' INT

resume=()
if compgen -G "$run/ckpt-*.json" > /dev/null; then resume=(--resume); fi
gan train "$model" --preset cpu --data "$data" --out "$run" --sample-every 40 "${resume[@]}"
if [ "$interrupted" = 1 ]; then
  echo "interrupted: the run is checkpointed in $run; npm start again resumes it"
  exit 130
fi
trap - INT

echo
echo "caption following (gan eval colour: share of samples whose dominant colour is their caption's):"
gan eval colour "$run" --data "$data" --n 256

newest=$(ls "$run"/ckpt-*.json | sort | tail -n 1)
cat <<EOF

done. The run folder $run holds:
  samples      $run/samples/index.html (grids with captions), $run/samples/latest-g2.png (the largest stage)
  curves       $run/curves.png (from $run/metrics.jsonl)
  checkpoint   $newest (+ .safetensors)
Sample new captions:  npx gan sample $run --embeddings E.npy --out grid.png
EOF
