"""Evaluation: rollouts on held-out seeds, the normalized score, benchmark tables, plots and
TensorBoard run comparison, for sites and fleets."""
