"""Writers of tiny datasets in the official on-disk formats (see DATASETS.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

GLAS_HEADER = "name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"


def glas_instances(height: int, width: int, n: int, seed: int) -> np.ndarray:
    """Rectangular glands with ids 1..n; gland 1 has two separate pieces."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[1:4, 1:4] = 1
    labels[height - 4 : height - 1, width - 4 : width - 1] = 1
    for gid in range(2, n + 1):
        r, c = int(rng.integers(5, height - 6)), int(rng.integers(5, width - 6))
        labels[r : r + 3, c : c + 3] = gid
    return labels


def write_glas(
    folder: Path, counts: dict[str, int], ext: str = ".bmp", seed: int = 0
) -> dict[str, np.ndarray]:
    """An official-layout GlaS copy: 8-bit RGB images, 8-bit single-channel annotations,
    Grade.csv with CR-only line endings and leading spaces.  Returns the written labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    rows = [GLAS_HEADER]
    for split, count in counts.items():
        for n in range(1, count + 1):
            stem = f"{split}_{n}"
            height, width = 20 + n, 30
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            labels = glas_instances(height, width, 3 + n % 3, seed + n)
            Image.fromarray(image).save(folder / f"{stem}{ext}")
            Image.fromarray(labels, mode="L").save(folder / f"{stem}_anno{ext}")
            written[stem] = labels
            grade = (
                " benign, healthy" if n % 2 else " malignant, moderately-to-poorly differentated"
            )
            rows.append(f"{stem},{n % 7 + 1},{grade}")
    header, body = rows[0], sorted(rows[1:])  # lexicographic, as the original
    (folder / "Grade.csv").write_bytes("\r".join([header, *body]).encode() + b"\r")
    return written


def rgba(image: np.ndarray) -> np.ndarray:
    alpha = np.full(image.shape[:2] + (1,), 255, dtype=np.uint8)
    return np.concatenate([image, alpha], axis=2)


def write_dsb_image(
    stage: Path, image_id: str, image: np.ndarray, masks: list[np.ndarray] | None
) -> None:
    """``<stage>/<id>/images/<id>.png`` (RGBA) and one 0/255 PNG per nucleus in masks/."""
    (stage / image_id / "images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba(image), mode="RGBA").save(stage / image_id / "images" / f"{image_id}.png")
    if masks is None:
        return
    (stage / image_id / "masks").mkdir(exist_ok=True)
    for k, mask in enumerate(masks):
        mask_id = f"{k:02d}" + "f" * 62
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(
            stage / image_id / "masks" / f"{mask_id}.png"
        )
