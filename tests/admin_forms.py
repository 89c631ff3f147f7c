"""Posting Django admin forms in tests the way a browser does: the change form as rendered, with some fields changed."""

from __future__ import annotations

from django.forms import MultiWidget


def change_form_post(client, url: str, **changes):
    """GET the admin change form at ``url``, then POST it back with ``changes`` applied to its editable fields (a
    read-only field is not in the form, so a change to it is posted anyway and must be ignored)."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    form = page.context["adminform"].form
    data: dict = {"_save": "Save"}
    for name in form.fields:
        bound = form[name]
        data.update(_encoded(bound.html_name, bound.field.widget, changes.pop(name, bound.value())))
    data.update({name: "" if value is None else value for name, value in changes.items()})
    return client.post(url, data)


def _encoded(name: str, widget, value) -> dict:
    if isinstance(widget, MultiWidget):  # split date and time
        parts = value if isinstance(value, list | tuple) else widget.decompress(value)
        return {f"{name}_{i}": "" if part is None else str(part) for i, part in enumerate(parts)}
    if isinstance(value, bool):
        return {name: "on"} if value else {}
    return {name: "" if value is None else value}
