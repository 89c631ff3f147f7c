"""The retraining-loop benchmark's summary: the gain over the k = 0 control, the share of the noisy-clean gap closed,
and the markdown tables."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

# (split, labels, metric) the gap is measured on, with a short name for the tables.
GAP_MEASURES = (
    ("PublicTest", "truth", "accuracy", "PT acc"),
    ("PublicTest", "truth", "macro_f1", "PT F1"),
    ("Training", "truth", "accuracy", "train acc vs truth"),
)


def _value(model: dict, split: str, labels: str, metric: str) -> float | None:
    return ((model.get("metrics") or {}).get(split) or {}).get(labels, {}).get(metric)


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None, "values": values}


def _range(values: list[float]) -> dict:
    return {**_spread(values), "min": min(values, default=None), "max": max(values, default=None)}


def control_gains(result: dict, split: str = "PublicTest", metric: str = "accuracy") -> list[dict]:
    """Per labels (noise kind or mode), retrain and k > 0: ``metric`` on ``split`` against the truth of version 0
    ("before"), of the same retrain at k = 0 (the control: the same recipe, seed and epochs on uncorrected labels)
    and of the retrain at k ("after"), in points, per seed and as mean, sample sd, min and max over the seeds; the
    gain is after minus control. Loops without a k = 0 retrain of that kind have no control and are left out."""
    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for loop in sorted(result["loops"], key=lambda loop: loop["seed"]):
        before = _value(loop["models"][0], split, "truth", metric)
        controls = {m["retrain"]: m for m in loop["models"][1:] if m["k"] == 0}
        for model in loop["models"][1:]:
            control = controls.get(model["retrain"])
            if not model["k"] or control is None:
                continue
            c, a = _value(control, split, "truth", metric), _value(model, split, "truth", metric)
            if None in (before, c, a):
                continue
            group = groups[(loop["noise"] or result["mode"], model["retrain"], model["k"])]
            group["seeds"].append(loop["seed"])
            group["before"].append(100 * before)
            group["control"].append(100 * c)
            group["after"].append(100 * a)
            group["gain"].append(100 * (a - c))
            group["settled"].append((model.get("settled") or {}).get("settled"))
    return [{"labels": labels, "retrain": retrain, "k": k, "split": split, "metric": metric, "seeds": g["seeds"],
             "settled": g["settled"], "before": _spread(g["before"]), "control": _spread(g["control"]),
             "after": _spread(g["after"]), "gain": _range(g["gain"])}
            for (labels, retrain, k), g in sorted(groups.items(), key=lambda item: (str(item[0][0]), *item[0][1:]))]


def gap_closed(result: dict) -> list[dict]:
    """Per noise kind, retrain and k: (after - noisy) / (clean - noisy) per seed, with mean and sample sd. The noisy
    end is the loop's version 0, the clean end the same seed's model trained on the clean file. With a k = 0 retrain
    in the loop, also (after - after at k = 0) / (clean - noisy): the share the corrections add to retraining alone
    (a finetune's extra epochs close part of the gap with no label changed)."""
    clean = {end["seed"]: end for end in result["clean_ends"]}
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for loop in result["loops"]:
        end = clean.get(loop["seed"])
        if end is None:
            continue
        noisy = loop["models"][0]
        controls = {m["retrain"]: m for m in loop["models"][1:] if m["k"] == 0}
        for model in loop["models"][1:]:
            control = controls.get(model["retrain"])
            for split, labels, metric, name in GAP_MEASURES:
                n, c, a = (_value(m, split, labels, metric) for m in (noisy, end, model))
                if None in (n, c, a):
                    continue
                group = groups[(loop["noise"], model["retrain"], model["k"], name)]
                group["gap"].append(100 * (c - n))
                group["gain"].append(100 * (a - n))
                if c != n:
                    group["closed"].append((a - n) / (c - n))
                    if control is not None and model["k"]:  # what the corrections add to the same retrain on none
                        group["beyond_control"].append((a - _value(control, split, labels, metric)) / (c - n))
    return [{"noise": noise, "retrain": retrain, "k": k, "measure": name,
             "gap_points": _spread(g["gap"]), "gain_points": _spread(g["gain"]), "closed": _spread(g["closed"]),
             "closed_beyond_k0": _spread(g["beyond_control"])}
            for (noise, retrain, k, name), g in groups.items()]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _pm(spread: dict, *, count: bool = False) -> str:
    """mean ± sd, and with ``count`` the number of seeds it is over (a seed whose gap is 0 has no share closed)."""
    if spread["mean"] is None:
        return "-"
    text = f"{spread['mean']:+.2f}" + (f" ± {spread['sd']:.2f}" if spread["sd"] is not None else "")
    return text + (f" (n={len(spread['values'])})" if count else "")


def _model_rows(result: dict) -> list[list[str]]:
    rows = []
    private = any("PrivateTest" in (m.get("metrics") or {}) for loop in result["loops"] for m in loop["models"])

    def cells(noise: str, seed: int, model: dict) -> list[str]:
        settled = model.get("settled") or {}
        moved = (f"{settled['settled']}/{settled['changed']}/{settled['corrected']}/{settled['wrong']}"
                 + (f" ({settled['skipped']} skipped)" if settled.get("skipped") else "") if settled else "-")
        gate = (model.get("gate") or "").split(":")[0]
        row = [noise, str(seed), model["model"], moved,
               _pct(_value(model, "PublicTest", "truth", "accuracy")),
               _pct(_value(model, "PublicTest", "truth", "macro_f1"))]
        if private:
            row += [_pct(_value(model, "PrivateTest", "truth", "accuracy"))]
        row += [_pct(_value(model, "Training", "truth", "accuracy")),
                _pct(_value(model, "Training", "truth", "macro_f1")),
                _pct(_value(model, "Training", "original", "accuracy")),
                gate or "-", f"{model['seconds']:.0f}"]
        return row

    for end in result["clean_ends"]:
        rows.append(cells("clean", end["seed"], {**end, "model": "clean end (scratch)"}))
    for loop in result["loops"]:
        for model in loop["models"]:
            name = f"v0 ({model['retrain']})" if model["k"] is None else model["model"]
            rows.append(cells(loop["noise"] or result["mode"], loop["seed"], {**model, "model": name}))
    head = ["labels", "seed", "model", "settled/changed/corrected/wrong", "PT acc", "PT F1"]
    head += ["PrivT acc"] if private else []
    head += ["train acc truth", "train F1 truth", "train acc orig", "gate", "train s"]
    return [head, *rows]


def _markdown(rows: list[list[str]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _step_times(result: dict) -> dict[str, list[float]]:
    """Wall seconds per step over the loops (and the clean ends), in first-seen order."""
    times: dict[str, list[float]] = defaultdict(list)
    runs = [("clean end: ", run) for run in result["clean_ends"]] + [("", run) for run in result["loops"]]
    for prefix, run in runs:
        for label, seconds in run["steps"]:
            times[prefix + label].append(seconds)
    return times


def step_minutes(result: dict) -> dict[str, float]:
    """Mean minutes per step over the loops, and per whole loop (``loop``: its steps plus the untimed measuring)."""
    minutes = {label: round(statistics.fmean(v) / 60, 2) for label, v in _step_times(result).items()}
    walls = [loop["wall_seconds"] for loop in result["loops"] if loop.get("wall_seconds")]
    if walls:
        minutes["loop"] = round(statistics.fmean(walls) / 60, 1)
    return minutes


def _step_rows(result: dict) -> list[list[str]]:
    return [["step", "runs", "mean min", "mean s", "min s", "max s"],
            *[[label, str(len(v)), f"{statistics.fmean(v) / 60:.1f}", f"{statistics.fmean(v):.1f}", f"{min(v):.1f}",
               f"{max(v):.1f}"] for label, v in _step_times(result).items()]]


def _points(spread: dict) -> str:
    return "-" if spread["mean"] is None else f"{spread['mean']:.2f}"


def _gain_rows(gains: list[dict]) -> list[list[str]]:
    rows = [["labels", "retrain", "k", "seeds", "before (v0)", "control (k=0)", "after", "gain over control",
             "gain min..max", "gain per seed"]]
    for g in gains:
        gain = g["gain"]
        rows.append([str(g["labels"]), g["retrain"], str(g["k"]), str(len(g["seeds"])), _points(g["before"]),
                     _points(g["control"]), _points(g["after"]), _pm(gain),
                     "-" if gain["min"] is None else f"{gain['min']:+.2f}..{gain['max']:+.2f}",
                     ", ".join(f"{seed}: {v:+.2f}" for seed, v in zip(g["seeds"], gain["values"], strict=True))])
    return rows


def queue_precision(loop: dict) -> dict | None:
    """The loop's queue as scored, judged on FER+'s development half (``child_queue``), where it was."""
    for model in loop["models"]:
        settled = model.get("settled") or {}
        # "queue" held it (and lost the queue's size) in the runs of 2026-12-07 before the key was renamed
        scored = settled.get("queue_as_scored", settled.get("queue"))
        judged = scored.get("ferplus_development_half") if isinstance(scored, dict) else None
        if judged:
            return judged
    return None


def print_report(result: dict) -> None:
    print("\n" + "=" * 100)
    print(json.dumps(result))
    scale = result["scale"]
    print(f"\n{result.get('date', '')}, {result.get('machine', '')}\ncommand: {result.get('command', '')}")
    print(f"\nScale: {scale['training_faces']} Training, {scale['public_test_faces']} PublicTest, "
          f"{scale['private_test_faces']} PrivateTest faces (limit {scale['limit'] or 'none'}); version 0: "
          f"{'the shipped checkpoint' if scale.get('from_shipped') else 'trained from scratch'}; scratch: recipe "
          f"{scale['recipe']}, arch {scale['arch']}, epochs {scale['epochs']}; finetune epochs "
          f"{scale['finetune_epochs']}; scoring {scale['score_method']}"
          + (f" ({scale['folds']} folds x {scale['score_epochs']} epochs)" if scale["folds"]
             else f" ({scale['score_epochs']} epochs)" if scale.get("score_epochs") else "")
          + ("; blended with v0" if scale.get("blend_active") else "")
          + f"; top {scale['top']}; retrain {', '.join(scale['retrain'])}; seeds {scale['seeds']}"
          + (f"; noise {scale['noise']} {', '.join(scale['inject'])}" if scale["inject"] else "")
          + f"; {scale['cpus']} CPU(s), OMP_NUM_THREADS={scale['omp_threads']}; total {scale['total_seconds']:.0f} s")
    for loop in result["loops"]:
        first = next((m["settled"] for m in loop["models"] if m.get("settled")), None)
        size = first and (first["queue"]["items"] if isinstance(first["queue"], dict) else first["queue"])
        queue = f"queue {size} items ({first['scoring_method']})" if first else "no items settled"
        judged = queue_precision(loop)
        if judged:
            queue += ", on FER+'s development half " + " ".join(
                f"{key} {judged[key]:.3f}" for key in ("p@100", "p@500", "p@1000") if judged.get(key) is not None)
        print(f"  {loop['noise'] or result['mode']} seed {loop['seed']}: {loop['wrong_labels']} wrong Training labels "
              f"(imported vs truth); {queue}; scoring {loop['scoring_seconds']:.0f} s"
              + (f"; {loop['wall_seconds'] / 60:.0f} min in all" if loop.get("wall_seconds") else "")
              + (f"; finished {loop['finished']} ({loop['machine']})" if loop.get("finished") else ""))
    evaluation = result.get("evaluation")
    if evaluation:
        print(f"Truth: {evaluation['labels']}: {evaluation['public_test_judged']} PublicTest and "
              f"{evaluation['training_judged']} Training faces with an emotion (the others are left out)")
    answers = result.get("oracle_answers")
    if answers:
        print(f"Oracle on the {answers['training_rows']} Training faces: {answers['other_label']} another emotion, "
              f"{answers['not_a_face']} not a face, {answers['same_label']} the given label, {answers['skip']} "
              "skipped (no answer)")
    print("\nModels (%; truth = evaluation labels, orig = imported labels; settled/changed/corrected/wrong: items "
          "settled, labels changed, wrong labels set right, settled items whose imported label was wrong):\n")
    print(_markdown(_model_rows(result)))
    if result.get("gap_closed"):
        print("\nShare of the noisy-clean gap closed, (after - noisy) / (clean - noisy), mean ± sd over seeds; "
              "PublicTest accuracy gap and gain in points:\n")
        by_row: dict[tuple, dict[str, dict]] = defaultdict(dict)
        for g in result["gap_closed"]:
            by_row[(g["noise"], g["retrain"], g["k"])][g["measure"]] = g
        names = [name for *_, name in GAP_MEASURES]
        rows = [["noise", "retrain", "k", "PT acc gap", "PT acc gain", *(f"closed: {name}" for name in names),
                 "closed beyond k=0: PT acc"]]
        for (noise, retrain, k), measures in sorted(by_row.items()):
            acc = measures.get("PT acc")
            rows.append([noise, retrain, str(k), _pm(acc["gap_points"]) if acc else "-",
                         _pm(acc["gain_points"]) if acc else "-",
                         *(_pm(measures[name]["closed"], count=True) if name in measures else "-" for name in names),
                         _pm(acc["closed_beyond_k0"], count=True) if acc else "-"])
        print(_markdown(rows))
    print("\nWall time per step (manage.py steps: the whole subprocess, start-up included; settling and registering: "
          "in-process):\n")
    print(_markdown(_step_rows(result)))
    gains = result.get("control_gains") or []
    judged = (result.get("evaluation") or {}).get("public_test_judged")
    truth = (result.get("evaluation") or {}).get("labels", "the evaluation labels")
    print(f"\nPublicTest accuracy (%) against {truth}" + (f" ({judged} faces)" if judged else "")
          + ": version 0, the k = 0 control (same retrain on uncorrected labels), the retrain after the top k was "
          "settled, and the gain over the control (points, mean ± sample sd over seeds):\n")
    print(_markdown(_gain_rows(gains)) if gains else "(no retrain with a k = 0 control)")
    print("BENCH-SUMMARY " + json.dumps({
        "date": result.get("date"), "machine": result.get("machine"), "command": result.get("command"),
        "mode": result["mode"], "truth": truth, "public_test_judged": judged, "seeds": scale["seeds"],
        "gains": [{"labels": g["labels"], "retrain": g["retrain"], "k": g["k"], "seeds": g["seeds"],
                   "settled": g["settled"], "before": g["before"]["mean"], "control": g["control"]["mean"],
                   "after": g["after"]["mean"], "gain_mean": g["gain"]["mean"], "gain_sd": g["gain"]["sd"],
                   "gain_min": g["gain"]["min"], "gain_max": g["gain"]["max"], "gain_per_seed": g["gain"]["values"]}
                  for g in gains],
        "queue_p@500_per_seed": {loop["seed"]: (queue_precision(loop) or {}).get("p@500")
                                 for loop in result["loops"]},
        "minutes_per_step": step_minutes(result)}))
