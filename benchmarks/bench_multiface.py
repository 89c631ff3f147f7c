"""Every face of every shared photo, as an upload cuts them: faces found per photo, their boxes, and the time the
upload request spends on them (detection and 48x48 crops of up to --max-faces faces, then the display copy of the
photo that the upload page draws the boxes on).

    OMP_NUM_THREADS=1 python benchmarks/bench_multiface.py [--photos DIR] [--repeats 5] [--max-faces 10]

Expected faces: one per photo, two in two_people.jpg. Times are medians of --repeats runs after one warm-up, on the
decoded photo (file decoding excluded: it is the same whatever the number of faces).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.uploads.images import image_display_copy  # noqa: E402  (Pillow only: no Django needed)
from ml.facedetect import DEFAULT, FaceCrop, NoFaceFound, crop_faces, get_detector  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "photos"
EXPECTED = {"two_people.jpg": 2}  # every other photo: 1
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def median_ms(work, repeats: int):
    result = work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(1000 * (time.perf_counter() - start))
    return result, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-faces", type=int, default=10, help="as UPLOADS_MAX_FACES (default 10)")
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"photo folder {args.photos} not found: nothing to benchmark (it lives in shared/, outside the repo)")
        return 1
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in SUFFIXES)
    get_detector(DEFAULT)
    print(f"{len(paths)} photos from {args.photos}; detector {DEFAULT}, up to {args.max_faces} faces a photo, "
          f"median of {args.repeats} runs")
    print(f"{'photo':24} {'size':>10} {'faces':>5} {'exp':>3} {'faces ms':>9} {'photo ms':>9}  boxes (x,y,w,h)")
    right, total_faces, face_ms, photo_ms = 0, 0, [], []
    for path in paths:
        with Image.open(path) as image:
            image.load()
            crops, ms = median_ms(lambda: faces_of(image, args.max_faces), args.repeats)
            _, display_ms = median_ms(lambda: image_display_copy(image), args.repeats)
            size = f"{image.width}x{image.height}"
        expected = EXPECTED.get(path.name, 1)
        right += len(crops) == expected
        total_faces += len(crops)
        face_ms.append(ms)
        photo_ms.append(display_ms)
        boxes = " ".join(f"({c.box.x},{c.box.y},{c.box.w},{c.box.h})" for c in crops)
        print(f"{path.name:24} {size:>10} {len(crops):>5} {expected:>3} {ms:9.1f} {display_ms:9.1f}  {boxes}")
    print(f"\nphotos with the expected number of faces: {right}/{len(paths)}; faces cut: {total_faces}; "
          f"median ms per photo: faces {statistics.median(face_ms):.1f}, "
          f"display copy {statistics.median(photo_ms):.1f}")
    return 0


def faces_of(image: Image.Image, max_faces: int) -> list[FaceCrop]:
    """What an upload with ``no_face=reject`` cuts: every face up to ``max_faces``, none when none is found."""
    try:
        return crop_faces(image, max_faces=max_faces, use_whole_if_none=False)
    except NoFaceFound:
        return []


if __name__ == "__main__":
    raise SystemExit(main())
