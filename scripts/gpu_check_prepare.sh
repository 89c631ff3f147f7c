#!/usr/bin/env bash
# Prepares .gpu/ for scripts/gpu_check.sh, on this machine (it has PyPI and ../shared; the GPU machine has neither):
#   .gpu/whl/   wheels for Python 3.12 (the GPU machine's) of what `ml` needs beyond that machine's own packages
#   .gpu/fer-subset.csv.gz   a subset of the shared FER-2013 file (every tree sent there must stay under 64 MiB)
# .gpu/ is git-ignored: data and wheels never enter the repository. Then, with the device tool:
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=580)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CSV=${FER2013_CSV:-../shared/data/fer2013/fer2013.csv.gz}
TRAIN_ROWS=${TRAIN_ROWS:-8000}
rm -rf .gpu && mkdir -p .gpu/whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
# Pure-Python wheels (grad-cam publishes only an sdist: built here, it is py3-none-any).
"$PY" -m pip wheel -q --no-deps -w .gpu/whl grad-cam==1.5.7
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
    -d .gpu/whl ttach==0.0.3 cleanlab==2.9.0 termcolor==3.3.0 dlib-bin==20.0.1.post1
if [ ! -f "$CSV" ]; then
    echo "shared FER-2013 file not found at $CSV: the check's CLI runs need it" >&2
    exit 1
fi
"$PY" - "$CSV" "$TRAIN_ROWS" <<'PYEOF'
import csv, gzip, sys
src, n_train = sys.argv[1], int(sys.argv[2])
kept = {"Training": 0, "PublicTest": 0}
with gzip.open(src, "rt", newline="") as fin, gzip.open(".gpu/fer-subset.csv.gz", "wt", newline="") as fout:
    reader, writer = csv.reader(fin), csv.writer(fout)
    writer.writerow(next(reader))
    for row in reader:
        usage = row[2]
        if usage == "Training" and kept["Training"] < n_train or usage == "PublicTest":
            writer.writerow(row)
            kept[usage] += 1
print(f".gpu/fer-subset.csv.gz: {kept['Training']} Training and {kept['PublicTest']} PublicTest rows")
PYEOF
du -sh .gpu .gpu/whl .gpu/fer-subset.csv.gz
