"""``python -m streams.kafka``: the consumer CLI (see ``streams.kafka.cli``)."""

import sys

from streams.kafka.cli import main

sys.exit(main())
