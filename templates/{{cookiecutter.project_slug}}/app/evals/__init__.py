"""Evals: run a dataset through the same `app.service` path as the API, score it, compare runs.

`python -m app.evals run | compare | export --from-feedback`; see `app/evals/cli.py` and the README.
Nothing here is imported by the serving path except `models` (the tables).
"""
