"""megapod-gym: a Gymnasium environment of an EV fast-charging site hosting AI compute and a battery."""

__version__ = "0.1.0"
