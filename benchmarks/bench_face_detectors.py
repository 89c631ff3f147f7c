"""Compare the face detectors of ml/facedetect.py on the shared real photos: faces found, largest box, ms per image.

    OMP_NUM_THREADS=1 python benchmarks/bench_face_detectors.py [--photos DIR] [--repeats 5] [--methods dlib_hog ...]

Expected faces: one per photo, two in two_people.jpg. Detectors whose package is missing are listed and skipped.
Latency is detect_faces() alone (grayscale conversion done beforehand), median of --repeats runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.facedetect import DEFAULT, DETECTORS, DetectorUnavailable, detect_faces, get_detector, to_gray  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "photos"
EXPECTED = {"two_people.jpg": 2}  # every other photo: 1
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def load_photos(folder: Path) -> dict[str, object]:
    return {p.name: to_gray(ImageOps.exif_transpose(Image.open(p)))
            for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES}


def bench(method: str, photos: dict, repeats: int) -> dict:
    hits, false_pos, latencies = 0, 0, []
    print(f"\n== {method}{' (current DEFAULT)' if method == DEFAULT else ''}")
    print(f"{'photo':24} {'size':>10} {'faces':>5} {'exp':>3} {'largest box (x,y,w,h) score':>36} {'ms':>8}")
    for name, gray in photos.items():
        detect_faces(gray, method)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            boxes = detect_faces(gray, method)
            times.append(1000 * (time.perf_counter() - start))
        ms = statistics.median(times)
        latencies.append(ms)
        expected = EXPECTED.get(name, 1)
        hits += len(boxes) == expected
        false_pos += max(0, len(boxes) - expected)
        top = boxes[0] if boxes else None
        largest = f"({top.x},{top.y},{top.w},{top.h}) {top.score:.2f}" if top else "-"
        size = f"{gray.shape[1]}x{gray.shape[0]}"
        print(f"{name:24} {size:>10} {len(boxes):>5} {expected:>3} {largest:>36} {ms:8.1f}")
    return {"method": method, "hits": hits, "false_pos": false_pos, "ms": statistics.median(latencies),
            "n": len(photos)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", nargs="*", default=list(DETECTORS))
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        print(f"photo folder {args.photos} not found: nothing to benchmark (it lives in shared/, outside the repo)")
        return 1
    photos = load_photos(args.photos)
    print(f"{len(photos)} photos from {args.photos}")

    rows = []
    for method in args.methods:
        try:
            start = time.perf_counter()
            get_detector(method)
            load_ms = 1000 * (time.perf_counter() - start)
        except DetectorUnavailable as exc:
            print(f"\n== {method}: skipped, {exc}")
            continue
        row = bench(method, photos, args.repeats)
        row["load_ms"] = load_ms
        rows.append(row)

    print("\nsummary (right face count = photos with exactly the expected number of faces)")
    print(f"{'method':14} {'right face count':>16} {'false positives':>15} {'median ms/image':>15} {'load ms':>8}")
    for r in sorted(rows, key=lambda r: (-r["hits"], r["false_pos"], r["ms"])):
        print(f"{r['method']:14} {r['hits']:>10}/{r['n']:<5} {r['false_pos']:>15} {r['ms']:>15.1f} "
              f"{r['load_ms']:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
