"""Training data from a user's own videos, MotionVid-QA style: scan and filter, annotate with
MotionSight's visual prompts, template questions, preference pairs, trainer exports.

Submodules load on demand (``from motionsight.dataset import export``); this package imports
nothing heavy itself.
"""
