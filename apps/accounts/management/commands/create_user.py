"""``manage.py create_user --role reviewer --username alice [--email E] [--password-stdin | --generate-password]``.

Never prints a password except a generated one, once. Without a password option it prompts only on a terminal.
"""

from __future__ import annotations

import getpass
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.roles import Role
from apps.accounts.services import password_generate, user_create


class Command(BaseCommand):
    help = "Create a user with a role (reviewer, researcher or admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", default="")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-stdin", action="store_true", help="Read the password from stdin (one line).")
        source.add_argument("--generate-password", action="store_true", help="Generate one and print it once.")

    def handle(self, *args, **options) -> None:
        username: str = options["username"]
        if get_user_model().objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists.")
        password = self._password(options)
        try:
            user = user_create(username=username, role=options["role"], email=options["email"], password=password)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created user {user.username!r} with role {options['role']}."))
        if options["generate_password"]:
            self.stdout.write(f"Generated password (shown once): {password}")

    def _password(self, options) -> str:
        if options["generate_password"]:
            return password_generate()
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: no password on stdin.")
            return password
        if not sys.stdin.isatty():
            raise CommandError("No terminal to prompt for a password: use --password-stdin or --generate-password.")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("Passwords do not match.")
        if not first:
            raise CommandError("Empty password.")
        return first
