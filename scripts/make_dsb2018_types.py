"""Regenerate (or check) the packaged DSB2018 image-type table from a stage-1 copy.

Usage:
    python scripts/make_dsb2018_types.py DSB2018_ROOT            # rewrite the table
    python scripts/make_dsb2018_types.py DSB2018_ROOT --check    # compare, exit 1 on a difference

Reads every image of ``stage1_train/`` and ``stage1_test/`` (the test folder is optional),
classifies it with ``plugins.datasets.dsb2018.image_type`` -- the rule the loader applies to an
image missing from the table, so the table and the loader cannot disagree -- and writes
``plugins/datasets/data/dsb2018_types.csv`` (``image_id,stage,type``, sorted by stage then id)
and its provenance, ``dsb2018_types.PROVENANCE.md``, which records the counts and a sha256
over the source images so a later run can tell whether it saw the same files.

The table lets a dataset object plan its splits without decoding 735 images.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections import Counter
from pathlib import Path

from plugins.datasets._io import read_rgb
from plugins.datasets.dsb2018 import image_type

DATA = Path(__file__).resolve().parents[1] / "plugins" / "datasets" / "data"
TABLE = DATA / "dsb2018_types.csv"
PROVENANCE = DATA / "dsb2018_types.PROVENANCE.md"
STAGES = ("stage1_train", "stage1_test")


def classify(root: Path) -> tuple[list[tuple[str, str, str]], str]:
    """(image_id, stage, type) of every image under ``root``, and a sha256 over the images."""
    rows = []
    digest = hashlib.sha256()
    for stage in STAGES:
        folder = root / stage
        if not folder.is_dir():
            if stage == "stage1_train":
                sys.exit(f"error: {folder} does not exist; pass the folder that holds stage1_train/")
            continue
        for entry in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            path = entry / "images" / f"{entry.name}.png"
            digest.update(f"{stage}/{entry.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
            rows.append((entry.name, stage, image_type(read_rgb(path, "dsb2018", ""))))
    return rows, digest.hexdigest()


def table_text(rows: list[tuple[str, str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image_id", "stage", "type"])
    writer.writerows(rows)
    return out.getvalue()


def provenance_text(rows: list[tuple[str, str, str]], images_sha256: str) -> str:
    counts = Counter((stage, kind) for _, stage, kind in rows)
    lines = [
        "# dsb2018_types.csv: provenance",
        "",
        "The image type (fluorescence, brightfield, histology) of every released DSB2018 stage-1",
        "image, so that a `dsb2018` dataset object plans its type-stratified splits without decoding",
        "images. Written by `scripts/make_dsb2018_types.py DSB2018_ROOT`, which decodes each",
        "`<stage>/<ImageId>/images/<ImageId>.png` and applies",
        "`plugins.datasets.dsb2018.image_type` (the rule the loader applies to an image missing",
        "from the table). `--check` recomputes the table and exits 1 on any difference.",
        "",
        "| stage | type | images |",
        "|---|---|---|",
        *(f"| {stage} | {kind} | {n} |" for (stage, kind), n in sorted(counts.items())),
        f"| all | | {len(rows)} |",
        "",
        "Source images: sha256 over the lines `<stage>/<ImageId>:<sha256 of the PNG>` in table",
        f"order = `{images_sha256}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="DSB2018 copy holding stage1_train/ (and stage1_test/)")
    parser.add_argument("--check", action="store_true", help="compare with the packaged table, write nothing")
    args = parser.parse_args(argv)
    rows, images_sha256 = classify(args.root)
    text = table_text(rows)
    if args.check:
        packaged = {r["image_id"]: r["type"] for r in csv.DictReader(TABLE.read_text(encoding="utf-8").splitlines())}
        differ = [f"{i}: table {packaged.get(i)!r}, pixels {t!r}" for i, _, t in rows if packaged.get(i) != t]
        extra = sorted(set(packaged) - {i for i, _, _ in rows})
        same = text == TABLE.read_text(encoding="utf-8")
        print(f"{len(rows)} images classified; {len(differ)} differ from {TABLE.name}; "
              f"{len(extra)} table rows not in {args.root}; the regenerated file is "
              f"{'byte-identical' if same else 'different'}")
        for line in differ:
            print("  " + line)
        return 1 if differ else 0
    TABLE.write_text(text, encoding="utf-8")
    PROVENANCE.write_text(provenance_text(rows, images_sha256), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {TABLE} and {PROVENANCE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
