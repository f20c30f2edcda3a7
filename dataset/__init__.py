"""Training data from MotionSight: pairs to review, reviewed pairs, trainer formats."""
