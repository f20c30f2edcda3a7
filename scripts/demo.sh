#!/usr/bin/env bash
# Build the environment if needed, then run MotionSight on a real sample clip.
# Pass a model to get an answer:  bash scripts/demo.sh --model /path/to/Qwen2.5-VL-7B-Instruct
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/setup_env.sh)"
video="${MOTIONSIGHT_SAMPLE:-../shared/videos/desert_vehicles_aerial.mp4}"
exec "$venv/bin/motionsight" run workflows/camera_motion_trails.json \
  --set "MotionSightLoadVideo.video=$video" --output motionsight_output "$@"
