"""Fine-tune a Mask R-CNN on COCO-format and Penn-Fudan data: see ``vis_train/cli.py``.

python tools/train.py --help
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vis_train.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
