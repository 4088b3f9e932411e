"""The search itself, on the driver: the spec's space as an Optuna define-by-run function, the
sampler a spec names, earlier sweeps read back as trials to learn from, the rules that end a
sweep early, and the Pareto front of several objectives. ``sweeps/running/search.py`` puts
them together into Ray Tune's searcher and scheduler."""
