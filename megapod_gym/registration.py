"""Registration of the environment ids with Gymnasium (idempotent)."""

from __future__ import annotations

from megapod_gym import ENV_ID, FLEET_ENV_ID, SOFT_ENV_ID


def register_envs() -> None:
    """Register the ids once; calling again is a no-op."""
    import gymnasium as gym

    for env_id, kwargs in (
        (ENV_ID, {}),
        (SOFT_ENV_ID, {"config_overrides": {"ev_priority": "soft"}}),
    ):
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="megapod_gym.envs.site_env:MegapodSiteEnv",
            vector_entry_point="megapod_gym.envs.vector_env:MegapodVectorEnv",
            kwargs=kwargs,
            disable_env_checker=False,
        )
    if FLEET_ENV_ID not in gym.registry:
        gym.register(
            id=FLEET_ENV_ID,
            entry_point="megapod_gym.envs.fleet_env:MegapodFleetEnv",
            disable_env_checker=False,
        )
