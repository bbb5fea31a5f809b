"""Training with stable-baselines3: YAML config, the native vector-env adapter, callbacks, the run
folder and the demo (needs the `train` extra)."""
