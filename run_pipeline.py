"""Run the vis pipeline (the documented entry point; the code is in ``vis_pipeline/``).

    python run_pipeline.py --config configs/demo.yaml --source video.mp4 --output out/

``python run_pipeline.py --help`` lists every option; ``vis-pipeline`` (the console script
of an installed checkout) is the same command.
"""

import sys

from vis_pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
