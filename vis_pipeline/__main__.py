"""``python -m vis_pipeline``: the command line."""

import sys

from vis_pipeline.cli import main

sys.exit(main())
