"""`python -m aistarter_infra <program dir>`: render a Pulumi program under mocks and validate it."""

import sys

from .pipeline import main

sys.exit(main())
