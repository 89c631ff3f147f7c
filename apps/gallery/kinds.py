"""The gallery app's units of work (``apps.core.work``), registered in ``GalleryConfig.ready``."""

from __future__ import annotations

from apps.core.work import WorkKind

FAITHFULNESS_RUN = WorkKind(name="faithfulness_run", label="faithfulness runs", model="gallery.FaithfulnessRun",
                            task="gallery.faithfulness")

KINDS = (FAITHFULNESS_RUN,)
