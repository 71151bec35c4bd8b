# cookiecutter's post-generation hook, run in the new project. The steps are aistarter.hooks.after, the ones
# `aistarter new` runs too: vendor the infra library, then the first commit and the aistarter/template branch.
import sys
from pathlib import Path

from aistarter.hooks import after

sys.exit(after(Path.cwd()))
