"""Everything that acts: the `Policy` interface, rule baselines (site and fleet), trained SB3 models
and the name → policy registry."""
