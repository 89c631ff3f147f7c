#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import sys


def main() -> None:
    from ferplatform.startup import settings_or_exit

    settings_or_exit()  # production settings unless DJANGO_SETTINGS_MODULE says otherwise
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
