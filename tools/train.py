"""The older form of ``vis-pipeline train`` (``vis_train/cli.py``), kept working.

python tools/train.py --help      # the same as: vis-pipeline train --help
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vis_train.cli import main  # noqa: E402

if __name__ == "__main__":
    print("note: tools/train.py is now `vis-pipeline train` (same options)", file=sys.stderr)
    raise SystemExit(main())
