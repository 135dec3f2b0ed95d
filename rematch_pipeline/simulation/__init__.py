"""`rematch simulate`: weekly rounds through the real pipeline on a throwaway home, against the hindsight optimum."""

# The look-ahead run's weight unless told otherwise (measured in README and docs/solver-tuning.md).
LOOK_AHEAD_WEIGHT = 10.0
