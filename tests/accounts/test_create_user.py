from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from apps.accounts.roles import Role, user_roles

pytestmark = pytest.mark.django_db


class FakeStdin(io.StringIO):
    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run(*args: str, stdin: str = "", monkeypatch) -> str:
    monkeypatch.setattr("sys.stdin", FakeStdin(stdin))
    out = io.StringIO()
    call_command("create_user", *args, stdout=out)
    return out.getvalue()


def test_generated_password_is_printed_once_and_works(monkeypatch):
    out = run("--role", "reviewer", "--username", "alice", "--generate-password", monkeypatch=monkeypatch)
    lines = [line for line in out.splitlines() if "password" in line.lower()]
    assert len(lines) == 1
    password = lines[0].rsplit(": ", 1)[1]
    user = authenticate(RequestFactory().post("/"), username="alice", password=password)
    assert user is not None and user_roles(user) == {Role.REVIEWER}


def test_password_from_stdin_is_never_printed(monkeypatch):
    secret = "a-long-Secret-from-stdin-42"
    out = run("--role", "researcher", "--username", "bob", "--email", "bob@example.org", "--password-stdin",
              stdin=secret + "\n", monkeypatch=monkeypatch)
    assert secret not in out
    user = authenticate(RequestFactory().post("/"), username="bob", password=secret)
    assert user.email == "bob@example.org" and user_roles(user) == {Role.RESEARCHER}
    assert not user.is_staff


def test_admin_role_gets_django_admin_access(monkeypatch):
    run("--role", "admin", "--username", "carol", "--generate-password", monkeypatch=monkeypatch)
    carol = get_user_model().objects.get(username="carol")
    assert carol.is_staff and carol.is_superuser and Role.ADMIN in user_roles(carol)


def test_without_a_terminal_it_refuses_to_prompt(monkeypatch):
    with pytest.raises(CommandError, match="No terminal"):
        run("--role", "reviewer", "--username", "dave", monkeypatch=monkeypatch)
    assert not get_user_model().objects.filter(username="dave").exists()


def test_weak_password_and_duplicate_username_are_refused(monkeypatch):
    with pytest.raises(CommandError, match="too short|too common"):
        run("--role", "reviewer", "--username", "erin", "--password-stdin", stdin="abc\n", monkeypatch=monkeypatch)
    run("--role", "reviewer", "--username", "erin", "--generate-password", monkeypatch=monkeypatch)
    with pytest.raises(CommandError, match="already exists"):
        run("--role", "reviewer", "--username", "erin", "--generate-password", monkeypatch=monkeypatch)


def test_unknown_role_is_refused(monkeypatch):
    with pytest.raises(CommandError):
        run("--role", "boss", "--username", "frank", "--generate-password", monkeypatch=monkeypatch)
