"""Gymnasium environments (the only layer that imports gymnasium)."""

from megapod_gym.envs.site_env import MegapodSiteEnv, make_decoder, make_encoder

__all__ = ["MegapodSiteEnv", "make_decoder", "make_encoder"]
