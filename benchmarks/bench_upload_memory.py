"""Peak memory of one upload request at the worst case the limits allow, through the real ``upload_create``.

    python benchmarks/bench_upload_memory.py [--files N [N ...]] [--side PX] [--no-db]

Each case runs in a fresh Python process (so ``ru_maxrss`` is that request's peak, not an earlier one's): Django is
set up, the user and the PNG bytes are ready, then ``apps.uploads.services.upload_create`` is called on N in-memory
files (``no_face=use_whole``, no CAM methods) and the process reports its peak RSS before and after the call. The
PNGs are solid-colour RGB files of ``side`` x ``side`` pixels written row by row, so the files are small (about
150 KB for 6324x6324) while their decode is as large as the per-file limit allows; building them never allocates
the full image.

Cases (from the settings in force, ``UPLOADS_MAX_*``):
- one file at the per-file pixel limit (``UPLOADS_MAX_PIXELS``): the floor of any request;
- the worst case the request budget allows: as many max-size files as fit in ``UPLOADS_MAX_REQUEST_PIXELS``
  (at most ``UPLOADS_MAX_FILES``);
- ``UPLOADS_MAX_FILES`` max-size files, the worst case before the request budget existed (now a 413 from the
  headers, before any decode).

Without ``--no-db`` the rows go to a fresh PostgreSQL database ``ferplatform_bench_upload_memory`` on the server of
$DATABASE_URL (migrated, dropped afterwards) and media and the (filesystem) broker to a temp dir; ``--no-db`` calls
``upload_files_check`` only (the validation and decode part, where the memory goes), which needs no database.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "ferplatform_bench_upload_memory"


def solid_png(side: int, rgb: tuple[int, int, int] = (128, 128, 128)) -> bytes:
    """A ``side`` x ``side`` RGB PNG of one colour, compressed row by row (never a full image in memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + bytes(rgb) * side  # filter type 0, then the pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(png_path: str, files: int, use_db: bool) -> None:
    """One request in this (fresh) process; prints one JSON line."""
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.uploads.services import UploadInvalid, upload_create, upload_files_check

    data = Path(png_path).read_bytes()
    uploads = [SimpleUploadedFile(f"big{i}.png", data, content_type="image/png") for i in range(files)]
    user = None
    if use_db:
        from django.contrib.auth import get_user_model

        user, _ = get_user_model().objects.get_or_create(username="bench-memory")
    before = _max_rss_mb()
    started = time.perf_counter()
    try:
        if use_db:
            result = upload_create(user=user, files=uploads, no_face="use_whole", methods=[])
        else:
            result = upload_files_check(files=uploads, no_face="use_whole")
        outcome = f"stored {len(result)}" if use_db else f"checked {len(result)}"
    except UploadInvalid as exc:
        outcome = f"{exc.status} {exc.code}"
    seconds = time.perf_counter() - started
    print(json.dumps({"before_mb": round(before, 1), "peak_mb": round(_max_rss_mb(), 1), "seconds": round(seconds, 2),
                      "outcome": outcome, "file_bytes": len(data)}))


def _limits(env: dict[str, str]) -> dict:
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            "import apps.uploads.services as u; request = u.max_request_pixels(); "
            "print(json.dumps({'files': s.UPLOADS_MAX_FILES, 'pixels': s.UPLOADS_MAX_PIXELS, 'request': request}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", help="only these cases: this many files each")
    parser.add_argument("--side", type=int, help="square images of this side (default: the per-file limit)")
    parser.add_argument("--no-db", action="store_true", help="call upload_files_check only (no database)")
    parser.add_argument("--child", nargs=2, metavar=("PNG", "FILES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), use_db=not args.no_db)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-upload-memory-"))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # filesystem broker under the temp dir
    env.update(DJANGO_SETTINGS_MODULE="ferplatform.settings.local", FERPLATFORM_VAR_DIR=str(work),
               MEDIA_ROOT=str(work / "media"), LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    use_db = not args.no_db
    try:
        if use_db:
            from benchdb import bench_database_create

            url = bench_database_create(BENCH_DB)
            if url is None:
                return 1
            env["DATABASE_URL"] = url
            subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
        limits = _limits(env)
        side = math.isqrt(limits["pixels"])
        if args.files:
            cases = [(files, args.side or side) for files in args.files]
        else:
            fit = limits["files"] if limits["request"] is None else min(limits["files"],
                                                                        limits["request"] // (side * side))
            cases = sorted({(1, side), (max(1, fit), side), (limits["files"], side)})
        print(f"limits: {limits['files']} files, {limits['pixels']:,} pixels per file, "
              f"request budget {limits['request'] if limits['request'] is None else format(limits['request'], ',')}"
              f"; {'upload_create (PostgreSQL)' if use_db else 'upload_files_check'}")
        print(f"{'files':>5} {'side':>6} {'total pixels':>14} {'request bytes':>13} {'outcome':>26} "
              f"{'RSS before':>10} {'peak RSS':>9} {'growth':>8} {'s':>6}")
        for files, case_side in cases:
            png = work / f"solid-{case_side}.png"
            if not png.exists():
                png.write_bytes(solid_png(case_side))
            command = [sys.executable, __file__, "--child", str(png), str(files)] + (["--no-db"] if args.no_db else [])
            out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{files:>5} {case_side:>6}  failed (exit {out.returncode}): {out.stderr.strip()[-400:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{files:>5} {case_side:>6} {files * case_side * case_side:>14,} {files * r['file_bytes']:>13,} "
                  f"{r['outcome']:>26} {r['before_mb']:>8.0f}MB {r['peak_mb']:>7.0f}MB "
                  f"{r['peak_mb'] - r['before_mb']:>6.0f}MB {r['seconds']:>6.2f}")
    finally:
        if use_db:
            from benchdb import bench_database_drop

            bench_database_drop(BENCH_DB)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
