"""Write MSR-VTT's {video_id: category} map (20 categories) for the GRAM patch's group-wise scores.

    python scripts/msrvtt_categories.py train_val_videodatainfo.json [test_videodatainfo.json ...] \
        --out msrvtt_categories.json

The videodatainfo files of the MSR-VTT release hold {"videos": [{"video_id": "video0", "category": 9,
...}, ...]}; GRAM's annotations carry only the video ids, so the categories come from here.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List


def categories(paths: List[str]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for path in paths:
        with open(path) as f:
            videos = json.load(f).get("videos")
        if not isinstance(videos, list):
            raise SystemExit(f"msrvtt_categories: {path} has no 'videos' list (an MSR-VTT videodatainfo file?)")
        for video in videos:
            video_id, category = video["video_id"], int(video["category"])
            if out.get(video_id, category) != category:
                raise SystemExit(f"msrvtt_categories: {video_id} has categories {out[video_id]} and {category}")
            if not 0 <= category < 20:
                raise SystemExit(f"msrvtt_categories: {video_id} has category {category}, expected 0..19")
            out[video_id] = category
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videodatainfo", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = categories(args.videodatainfo)
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"{len(result)} videos, {len(set(result.values()))} categories -> {args.out}")


if __name__ == "__main__":
    main()
