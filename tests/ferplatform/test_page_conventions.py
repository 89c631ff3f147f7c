"""The pages' conventions, checked by reading the files (no browser): URLs come from the server (``{% url %}`` into
data attributes, per-id ones with the sentinel id that ``ferplatform.urlFor`` replaces), the class list comes from
the server (``emotion-classes``, rendered once in ``base.html``), and every page uses the one JSON helper
(``static/js/api.js``) and the one DOM helper (``static/js/dom.js``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ml.labels import CLASSES

ROOT = Path(__file__).resolve().parents[2]
JS = sorted((ROOT / "static").rglob("*.js"))
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))

QUOTED_PATH = re.compile(r"""["'`]/[A-Za-z_]""")  # "/api/...", '/media/', `/gallery/...`
JOINED_PATH = re.compile(r"\$\{[^}]+\}/[A-Za-z_]")  # `${itemsUrl}${id}/votes`: a URL built by hand
QUOTED_CLASS = re.compile(r"""["'`](""" + "|".join(CLASSES) + r""")["'`]""")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _hits(pattern: re.Pattern, paths: list[Path]) -> list[str]:
    return [f"{_rel(p)}:{n}: {line.strip()}" for p in paths
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]


def test_the_files_exist():
    assert ROOT / "static/js/api.js" in JS and ROOT / "static/js/dom.js" in JS
    assert ROOT / "templates/base.html" in TEMPLATES


def test_no_path_literals_in_js_or_templates():
    assert _hits(QUOTED_PATH, JS + TEMPLATES) == [], "render URLs with {% url %} into a data attribute"
    assert _hits(JOINED_PATH, JS) == [], "per-id URLs: ferplatform.urlFor(template, id)"
    assert _hits(re.compile(r"/api/"), JS + TEMPLATES) == [], "API paths come from {% url %}, prose included"


@pytest.mark.parametrize("path", JS, ids=_rel)
def test_no_hard_coded_class_list(path):
    names = set(QUOTED_CLASS.findall(path.read_text()))
    assert len(names) < 3, f"{_rel(path)} spells out the classes {sorted(names)}: use ferplatform.classes()"


def test_the_class_list_is_rendered_once_in_base_html():
    rendered = [p for p in TEMPLATES if re.search(r"classes\s*\|\s*json_script", p.read_text())]
    assert rendered == [ROOT / "templates/base.html"]
    assert '{{ emotion_classes|json_script:"emotion-classes" }}' in (ROOT / "templates/base.html").read_text()


def test_one_json_helper_and_one_dom_helper():
    assert [_rel(p) for p in JS if "fetch(" in p.read_text()] == ["static/js/api.js"]
    assert [_rel(p) for p in JS if re.search(r"function el\(|const el = ", p.read_text())] == ["static/js/dom.js"]
    assert _hits(re.compile(r"innerHTML|outerHTML|insertAdjacentHTML"), JS) == [], "build nodes with ferplatform.el"
    # The CSRF token comes from the cookie (api.js), not from a hidden input a page renders for its script.
    assert _hits(re.compile(r"csrfmiddlewaretoken|X-CSRFToken"), [p for p in JS if p.name != "api.js"]) == []


def test_base_html_loads_the_helpers_before_page_scripts():
    base = (ROOT / "templates/base.html").read_text()
    head = base[: base.index("</head>")]
    assert "{% static 'js/dom.js' %}" in head and "{% static 'js/api.js' %}" in head
    # Page scripts are deferred too, so they run after the helpers (deferred scripts run in document order).
    for template in TEMPLATES:
        for tag in re.findall(r"<script src=[^>]*>", template.read_text()):
            assert "defer" in tag, f"{_rel(template)}: {tag}"
        text = template.read_text()
        if template.name != "base.html":
            assert "'js/api.js'" not in text and "'js/dom.js'" not in text, f"{_rel(template)}: base.html loads it"
