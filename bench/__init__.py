"""Side-by-side benchmarks for aistarter (issue 8).

Every figure is measured against a baseline in the same run (raw template engines for generation, a direct
upstream for the gateway), because these machines are noisy and only ratios/differences travel. Run
`python -m bench all` from the repository root; see bench/README.md.
"""
