"""Otsu's nucleus-channel decision on real data: per image type, which way it goes and the Dice.

Usage: python scripts/otsu_polarity_study.py DATASETS [--cache DIR] [--out FILE.json]
DATASETS holds ``dsb2018/stage1_train`` (official layout) and ``glas/`` (Warwick QU release).

For every DSB2018 stage1_train image (type from the loader's table, else from the pixels) it
records whether the nuclei really are darker than the background (mean grey inside the
annotated nuclei below the mean grey outside: a fact of the annotation, independent of any
rule), the decision of otsu's default, and the foreground Dice of several otsu settings.  For
GlaS testA/testB it records the decision per image and the split-pooled object F1 / object Dice
of the same settings.  ``--cache`` keeps the DSB2018 foreground masks between runs (reading
the 29,461 per-nucleus PNGs dominates the run time).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from skimage.color import rgb2gray

from plugins.datasets.dsb2018 import DSB2018
from plugins.datasets.glas import GlaS
from plugins.methods.otsu import Otsu
from plugins.metrics.glas import object_dice_statistics, object_f1_statistics, reduce_object_dice, reduce_object_f1
from plugins.metrics.matching import overlap_table
from plugins.metrics.pixel import dice

SETTINGS = {
    "default": {},
    "gray_dark": {"channel": "gray", "polarity": "dark"},
    "gray_bright": {"channel": "gray", "polarity": "bright"},
    "hematoxylin": {"channel": "hematoxylin"},
}


def dsb_foreground(ds: DSB2018, image_id: str, shape: tuple[int, int], cache: Path | None) -> np.ndarray:
    path = cache / f"{image_id}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    fg = ds.read_instances("stage1_train", image_id, shape) > 0
    if path is not None:
        np.save(path, fg)
    return fg


def study_dsb(root: Path, cache: Path | None) -> dict[str, object]:
    ds = DSB2018(root=root, protocol="holdout")
    methods = {name: Otsu(**params) for name, params in SETTINGS.items()}  # type: ignore[arg-type]
    rows = []
    for image_id in ds.train_ids:
        image = ds._read_image("stage1_train", image_id)
        fg = dsb_foreground(ds, image_id, image.shape[:2], cache)
        grey = rgb2gray(image)
        truly_dark = bool(grey[fg].mean() < grey[~fg].mean()) if fg.any() and (~fg).any() else None
        row: dict[str, object] = {"id": image_id, "type": ds.types[image_id], "truly_dark": truly_dark}
        for name, method in methods.items():
            prediction = method.predict(image)
            row[f"dice_{name}"] = dice(prediction=prediction.foreground, reference=fg)
            if name == "default":
                row["default_extras"] = {k: v for k, v in prediction.extras.items() if k != "postprocess"}
        rows.append(row)
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, object]]) -> dict[str, dict[str, float]]:
    by_type: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        by_type[str(row["type"])].append(row)
    out = {}
    for kind, group in sorted(by_type.items()):
        summary: dict[str, float] = {"images": len(group)}
        for name in SETTINGS:
            summary[f"mean_dice_{name}"] = float(np.mean([r[f"dice_{name}"] for r in group]))
        dark = [r for r in group if r["truly_dark"] is not None]
        summary["nuclei_truly_dark"] = sum(bool(r["truly_dark"]) for r in dark)
        out[kind] = summary
    return out


def study_glas(root: Path) -> dict[str, object]:
    ds = GlaS(root=root)
    methods = {name: Otsu(**params) for name, params in SETTINGS.items()}  # type: ignore[arg-type]
    out: dict[str, object] = {}
    for split in ("testA", "testB"):
        f1_stats: dict[str, list[dict[str, float]]] = defaultdict(list)
        dice_stats: dict[str, list[dict[str, float]]] = defaultdict(list)
        decisions = []
        for sample_id in ds.sample_ids(split):
            sample = ds.load(split, sample_id)
            for name, method in methods.items():
                prediction = method.predict(sample.image)
                table = overlap_table(prediction=prediction.instances, reference=sample.instances)
                f1_stats[name].append(object_f1_statistics(table))
                dice_stats[name].append(object_dice_statistics(table))
                if name == "default":
                    decisions.append({k: v for k, v in prediction.extras.items() if k != "postprocess"})
        out[split] = {
            "images": len(decisions),
            "decisions": decisions,
            **{
                name: {
                    "object_f1": reduce_object_f1(f1_stats[name])["value"],
                    "object_dice": reduce_object_dice(dice_stats[name])["value"],
                }
                for name in SETTINGS
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", choices=("dsb2018", "glas"))
    args = parser.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {}
    if args.only in (None, "dsb2018"):
        result["dsb2018"] = study_dsb(args.datasets / "dsb2018", args.cache)
        print(json.dumps(result["dsb2018"]["summary"], indent=1))  # type: ignore[index]
    if args.only in (None, "glas"):
        result["glas"] = study_glas(args.datasets / "glas")
        print(json.dumps({s: {k: v for k, v in r.items() if k != "decisions"} for s, r in result["glas"].items()}, indent=1))  # type: ignore[union-attr]
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
