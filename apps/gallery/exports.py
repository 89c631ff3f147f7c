"""The gallery's current selection as a ZIP (overlays + predictions.csv) and its plots as PNG bytes."""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from typing import IO

import numpy as np
from django.core.files.storage import default_storage
from django.db.models import QuerySet

from apps.inference.models import ModelVersion, Prediction
from ml import cam_stats, plots
from ml.cam_stats import MapAverager
from ml.labels import CLASSES

CSV_COLUMNS = ["face_id", "dataset", "dataset_name", "split", "source_row", "source_name", "original_label",
               "current_label", "predicted_label", "confidence", "correct", "reviewed", "label_quality", "overlay",
               *[f"p_{c}" for c in CLASSES]]
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """A cell of free text from outside (a dataset name, an imported file's path), made inert for spreadsheets by
    a leading ``'``. Only for such cells: numbers ("-0.5") are written as they are."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _name(label: int | None) -> str:
    return "" if label is None else CLASSES[label]


def gallery_zip(*, rows: QuerySet[Prediction], version: ModelVersion, method: str, limit: int) -> IO[bytes]:
    """A ZIP of the stored overlays of ``rows`` (at most ``limit``) and ``predictions.csv``; a temp file, rewound."""
    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    text = io.StringIO()
    writer = csv.writer(text)  # RFC 4180 line ends, so a CR or LF inside a cell is quoted too
    writer.writerow(CSV_COLUMNS)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for row in rows.select_related("face__dataset")[:limit]:
            face = row.face
            overlay = ""
            if row.overlay_name:
                overlay = f"overlays/{face.pk}_{method}_{_name(row.predicted_label)}.png"
                with default_storage.open(row.overlay_name, "rb") as fh:
                    archive.writestr(overlay, fh.read())
            writer.writerow([face.pk, face.dataset_id, csv_text(face.dataset.name), face.split, face.source_row,
                             csv_text(face.source_name), _name(face.original_label), _name(face.current_label),
                             _name(row.predicted_label), f"{row.confidence:.6f}", int(row.is_correct),
                             int(row.is_reviewed), "" if row.label_quality is None else f"{row.label_quality:.6f}",
                             overlay, *[f"{p:.6f}" for p in row.probabilities]])
        archive.writestr("predictions.csv", text.getvalue())
        archive.writestr("README.txt", f"model version {version.pk} ({version.name}), CAM method {method}\n"
                                       "overlays: the stored heatmap of the predicted class (none when not computed)\n")
    out.seek(0)
    return out


def confusion_png(normalized: list[list[float]], title: str) -> bytes:
    buffer = io.BytesIO()
    plots.plot_confusion(normalized, buffer, title=title)
    return buffer.getvalue()


def history_png(history: list[dict], title: str) -> bytes:
    """Training curves; figures an epoch did not record are drawn as gaps."""
    filled = [{"train_loss": np.nan, "train_accuracy": np.nan, **h} for h in history]
    buffer = io.BytesIO()
    plots.plot_history(filled, buffer, title=title)
    return buffer.getvalue()


def class_maps_png(maps: MapAverager, *, by: str, title: str) -> bytes:
    """One panel per class: the mean map and how many maps it averages."""
    panels = [(f"{by} {name} (n={maps.count(label)})", maps.mean(label)) for label, name in enumerate(CLASSES)]
    return cam_stats.map_grid_png(panels, title=title)


def cell_map_png(maps: MapAverager, *, true: int, predicted: int, title: str) -> bytes:
    key = (true, predicted)
    caption = f"true {CLASSES[true]} / predicted {CLASSES[predicted]} (n={maps.count(key)})"
    return cam_stats.map_grid_png([(caption, maps.mean(key))], columns=1, title=title)
