"""Ray Tune hyperparameter sweeps over SB3 training runs (needs the `ray` extra)."""
