#!/usr/bin/env bash
# Build the environment if needed, then answer a question about a real sample clip with
# MotionSight (routed workflow). With no model it writes the visual prompts and contact sheets
# and prints the exact request it would send. Point it to a model with extra arguments:
#   bash scripts/demo.sh --model /path/to/Qwen2.5-VL-7B-Instruct
#   bash scripts/demo.sh --base-url http://localhost:8000/v1 --model-name Qwen/Qwen2.5-VL-7B-Instruct
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/setup_env.sh)"
video="${MOTIONSIGHT_SAMPLE:-../shared/videos/desert_vehicles_aerial.mp4}"
question="${MOTIONSIGHT_QUESTION:-How does the camera move?
A. It stays still.
B. It moves forward, following the vehicle.
C. It pans to the left.
D. It zooms out.}"
exec "$venv/bin/motionsight" ask "$video" "$question" --output motionsight_output "$@"
