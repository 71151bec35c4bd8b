"""`python -m aistarter_infra <program dir>` renders and validates; `python -m aistarter_infra rehearse <dir>`
runs the rendered workloads (see `aistarter_infra.rehearse`)."""

import sys

if len(sys.argv) > 1 and sys.argv[1] == "rehearse":
    from .rehearse import main as rehearse_main

    sys.exit(rehearse_main(sys.argv[2:]))

from .pipeline import main  # noqa: E402 - the render path needs no rehearsal imports

sys.exit(main())
