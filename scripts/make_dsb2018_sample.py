"""Build the embedded dsb2018-sample from a DSB2018 stage1_train copy (official layout).

Usage: python scripts/make_dsb2018_sample.py SRC/stage1_train
Writes plugins/datasets/data/dsb2018_sample/: images/<id>.png (RGB; the constant alpha channel
of the official RGBA PNGs dropped), labels/<id>.png (uint16 instance map: the official
per-nucleus masks in sorted mask-id order get ids 1..N) and manifest.csv.  The selection is
deterministic: the first images (sorted by id) of each image type and size group.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image

GROUPS = [  # (image type, (height, width), how many)
    ("fluorescence", (256, 256), 10),
    ("histology", (256, 320), 6),
    ("fluorescence", (360, 360), 2),
    ("fluorescence", (520, 696), 2),
]
OUT = Path(__file__).resolve().parents[1] / "plugins/datasets/data/dsb2018_sample"


def image_type(rgb: np.ndarray) -> str:
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    if not grey:
        return "histology"
    return "brightfield" if np.median(rgb) > 127 else "fluorescence"


def main(src: Path) -> None:
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    (OUT / "labels").mkdir(parents=True, exist_ok=True)
    rows = []
    for kind, shape, count in GROUPS:
        picked = 0
        for folder in sorted(p for p in src.iterdir() if p.is_dir()):
            if picked == count:
                break
            image_path = folder / "images" / f"{folder.name}.png"
            rgba = np.asarray(Image.open(image_path))
            rgb = rgba[..., :3]
            if rgb.shape[:2] != shape or image_type(rgb) != kind:
                continue
            labels = np.zeros(shape, dtype=np.uint16)
            masks = sorted((folder / "masks").glob("*.png"))
            for i, mask_path in enumerate(masks, start=1):
                labels[np.asarray(Image.open(mask_path)) > 0] = i
            Image.fromarray(rgb).save(OUT / "images" / f"{folder.name}.png", optimize=True)
            Image.fromarray(labels).save(OUT / "labels" / f"{folder.name}.png", optimize=True)
            split = "train" if picked % 2 == 0 else "test"
            digest = hashlib.sha256(image_path.read_bytes()).hexdigest()
            rows.append([folder.name, split, kind, shape[0], shape[1], len(masks), digest])
            picked += 1
    with open(OUT / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image_id", "split", "type", "height", "width", "nuclei", "source_sha256"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} images to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
