"""Regenerate plugins/datasets/data/dsb2018_types.csv from a DSB2018 stage-1 copy.

Usage: python scripts/make_dsb2018_types.py DSB2018_ROOT
Reads every image of stage1_train/ and (when present) stage1_test/, classifies it with
plugins.datasets.dsb2018.image_type and writes one row per image: image_id, stage, type.
The table lets a run plan its splits without decoding 670 images, and keeps planning alive
when one image is unreadable.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from plugins.datasets._io import read_rgb
from plugins.datasets.dsb2018 import image_type

OUT = Path(__file__).resolve().parents[1] / "plugins/datasets/data/dsb2018_types.csv"


def main(root: Path) -> None:
    rows = []
    for stage in ("stage1_train", "stage1_test"):
        folder = root / stage
        if not folder.is_dir():
            continue
        for entry in sorted(p for p in folder.iterdir() if p.is_dir()):
            image = read_rgb(entry / "images" / f"{entry.name}.png", "dsb2018", "")
            rows.append((entry.name, stage, image_type(image)))
    with open(OUT, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image_id", "stage", "type"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
