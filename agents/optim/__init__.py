"""Optimization: the site and fleet hindsight LPs (HiGHS), the hindsight oracle and MPC on forecasts."""
