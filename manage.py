#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_ws.settings")
    from django.core.management import execute_from_command_line

    from openrouter_ws.env import SettingsError

    try:
        execute_from_command_line(sys.argv)
    except SettingsError as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
