"""The promotion gate's decision: does a new version replace the active one? (Activation itself is
``apps.inference.services.registry.model_version_activate``.)"""

from __future__ import annotations

from django.conf import settings


def promotion_gate_decide(*, candidate: dict | None, previous: dict | None, previous_name: str = "",
                          tolerance: float | None = None) -> tuple[bool, str]:
    """Promote unless PublicTest accuracy or macro-F1 drops more than ``tolerance`` points below the active
    version's (both measured now, on the same current labels). Returns (promote, reason)."""
    tol = settings.TRAINING_PROMOTION_TOLERANCE if tolerance is None else tolerance
    if previous is None:
        return True, "no active version to compare with"
    if not candidate:
        return False, "no PublicTest faces to measure the new version on; promote it by hand if wanted"
    drops = {name: 100 * (previous[key] - candidate[key]) for name, key in
             (("accuracy", "accuracy"), ("macro-F1", "macro_f1"))}
    figures = (f"accuracy {100 * candidate['accuracy']:.2f}% vs {100 * previous['accuracy']:.2f}%, macro-F1 "
               f"{100 * candidate['macro_f1']:.2f} vs {100 * previous['macro_f1']:.2f} ({previous_name})")
    failed = [f"{name} drops {drop:.2f} points" for name, drop in drops.items() if drop > tol + 1e-9]
    if failed:
        return False, f"kept inactive: {', '.join(failed)} (tolerance {tol:g}); {figures}"
    return True, f"promoted: within tolerance {tol:g} points; {figures}"
