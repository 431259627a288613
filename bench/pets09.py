"""Our tracker on real pedestrians (PETS 2009 S2.L1 dev span, ``vis_eval.pets09``), boxes
scored with TrackEval against the MOT15 ground truth of frames 0-399:

    python -m bench.pets09 --dets foreign --interval 1 --set tracker.max_lost_s=4

Prints one JSON line: HOTA, DetA, AssA, MOTA, IDF1, IDSW, ids, merged ids, ms per frame by
stage. ``bench.real_tracking`` runs ours and every peer on identical detections.
"""

from __future__ import annotations

import argparse
import json
import logging

from vis_eval import pets09
from vis_eval.box_scoring import merges


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dets", choices=["foreign", "gt"], default="foreign")
    ap.add_argument("--interval", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--frames", type=int, default=pets09.DEV_FRAMES)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    missing = pets09.available()
    if missing:
        raise SystemExit(f"pets09: {missing}")
    work = pets09.ROOT / "bench" / "results" / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    gt = pets09.load_gt(frames=args.frames)
    tracks, timing = pets09.run_ours(
        pets09.detections_path(args.dets, work), args.interval, args.overrides, count=args.frames
    )
    s = pets09.score(gt, {"ours": tracks}, args.frames)["ours"]
    print(
        json.dumps(
            {
                **s,
                "merged_ids": len(merges(gt, tracks)),
                "ms_per_frame": {k: round(v, 2) for k, v in timing.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
