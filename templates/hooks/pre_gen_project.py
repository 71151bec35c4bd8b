# cookiecutter's pre-generation hook. The check is aistarter.hooks.before, the one `aistarter new` runs too:
# the answers through questions.Answers, a one-line error and exit code 2 when one is bad.
import sys

from aistarter.hooks import before

sys.exit(before({{ aistarter_answers() }}))
