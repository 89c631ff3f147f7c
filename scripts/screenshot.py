"""The README's screenshot: the researchers' gallery with synthetic faces, on a throwaway SQLite stack.

    python scripts/screenshot.py [--out docs/img/gallery.png] [--per-class 6] [--path /gallery/]

Nothing derived from FER-2013 goes into the picture: the faces are cartoons drawn here (an expression per class, with
random size, position, tone and noise), written as a Kaggle-layout file. In a temporary FERPLATFORM_VAR_DIR it runs
``migrate``, ``bootstrap`` (the admin and the shipped model), ``import_fer2013`` and ``predict_split`` (GradCAM, in
that process, no worker), serves the platform with gunicorn, logs in as the admin with Playwright and Debian's
Chromium, and saves the page quantized to 256 colours so that the PNG stays small.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PASSWORD = "screenshot-Pa55word!"  # noqa: S105 - the throwaway stack's admin
SCALE = 4  # faces are drawn at 4x and scaled down, for smooth strokes


def face(label: int, rng: random.Random) -> Image.Image:
    """A 48x48 grey cartoon face whose expression says ``label`` (0 angry .. 6 neutral, as in FER-2013)."""
    size = 48 * SCALE
    background = rng.randrange(20, 110)
    image = Image.new("L", (size, size), background)
    draw = ImageDraw.Draw(image)
    cx, cy = size / 2 + rng.uniform(-8, 8), size / 2 + rng.uniform(-6, 10)
    rx, ry = rng.uniform(64, 80), rng.uniform(80, 92)
    skin = rng.randrange(150, 225)
    ink = max(0, skin - rng.randrange(120, 150))
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    eye_y, eye_dx, width = cy - ry * 0.22, rx * 0.42, 7
    eye_h = {0: 6, 2: 16, 5: 17}.get(label, 11)  # narrowed when angry, wide open in fear and surprise
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse((ex - 11, eye_y - eye_h, ex + 11, eye_y + eye_h), fill=ink)
        # brows: (inner end height, outer end height) above the eye; negative is lower
        inner, outer = {0: (14, 34), 1: (30, 30) if side < 0 else (44, 36), 2: (44, 36), 4: (46, 28),
                        5: (52, 50)}.get(label, (34, 34))
        draw.line((cx + side * 8, eye_y - inner, cx + side * (eye_dx + 22), eye_y - outer), fill=ink, width=width)
    mouth_y, mouth_w = cy + ry * 0.5, rx * 0.5
    box = (cx - mouth_w, mouth_y - 24, cx + mouth_w, mouth_y + 24)
    if label == 3:  # happy: a smile
        draw.arc(box, 15, 165, fill=ink, width=width + 2)
    elif label == 4:  # sad: a frown
        draw.arc((box[0], mouth_y, box[2], mouth_y + 44), 200, 340, fill=ink, width=width + 2)
    elif label == 5:  # surprise: a round open mouth
        draw.ellipse((cx - 18, mouth_y - 20, cx + 18, mouth_y + 26), fill=ink)
    elif label == 2:  # fear: a wide, low open mouth
        draw.ellipse((cx - mouth_w * 0.8, mouth_y - 6, cx + mouth_w * 0.8, mouth_y + 14), fill=ink)
    elif label == 1:  # disgust: a crooked mouth
        points = [(cx - mouth_w + i * mouth_w / 3, mouth_y + 10 * math.sin(i * 1.7)) for i in range(7)]
        draw.line(points, fill=ink, width=width)
    else:  # angry and neutral: a straight mouth, tighter when angry
        half = mouth_w * (0.6 if label == 0 else 0.9)
        draw.line((cx - half, mouth_y, cx + half, mouth_y), fill=ink, width=width)
    image = image.rotate(rng.uniform(-10, 10), resample=Image.BICUBIC, fillcolor=background)
    image = image.filter(ImageFilter.GaussianBlur(2)).resize((48, 48), Image.LANCZOS)
    noise = Image.effect_noise((48, 48), rng.uniform(8, 20))
    return Image.blend(image, noise, 0.12)


def fer_csv(path: Path, per_class: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = ["emotion,pixels,Usage"]
    for i in range(per_class * 7):
        label = i % 7
        lines.append(f"{label},{' '.join(map(str, face(label, rng).getdata()))},PublicTest")
    path.write_text("\n".join(lines) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def photograph(url: str, path: str, out: Path, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(f"{url}/accounts/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{url}{path}")
        page.wait_for_load_state("networkidle")
        png = page.screenshot()
        browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "gallery.png")
    parser.add_argument("--per-class", type=int, default=6, help="synthetic PublicTest faces per class")
    parser.add_argument("--path", default="/gallery/", help="the page to photograph")
    parser.add_argument("--size", default="1200x760", help="viewport, WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="ferplatform-screenshot-") as var:
        port = free_port()
        env = {key: value for key, value in os.environ.items()
               if key not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MEDIA_ROOT", "STATIC_ROOT"}}
        env.update(DJANGO_SETTINGS_MODULE="ferplatform.settings.local", FERPLATFORM_VAR_DIR=var,
                   FERPLATFORM_ADMIN_PASSWORD=PASSWORD, INFERENCE_REFRESH_ON_ACTIVATE="0", DEBUG="0",
                   GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1", LOG_LEVEL="WARNING")
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "bootstrap")
        manage(env, "import_fer2013", str(fer_csv(Path(var) / "synthetic.csv", args.per_class)))
        manage(env, "predict_split", "--dataset", "fer2013", "--split", "PublicTest", "--method", "gradcam")
        web = subprocess.Popen([PY, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "ferplatform.wsgi:application"],
                               cwd=ROOT, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{url}/accounts/login/", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            photograph(url, args.path, args.out, width, height)
        finally:
            web.terminate()
            web.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
