#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import sys


def main() -> None:
    from ferplatform.startup import settings_or_exit

    settings_or_exit()  # production settings unless DJANGO_SETTINGS_MODULE says otherwise
    from ferplatform.startup import manage_or_exit

    manage_or_exit(sys.argv)  # a database that cannot be had: one line, not a traceback


if __name__ == "__main__":
    main()
