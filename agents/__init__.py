"""Policies (baselines, hindsight optimum, MPC, trained and exported models), evaluation and the CLI."""
