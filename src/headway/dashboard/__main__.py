"""``python -m headway.dashboard hash-password``: print a HEADWAY_DASHBOARD_PASSWORD_HASH."""

from __future__ import annotations

import getpass
import sys

from headway.dashboard.security import hash_password


def main(argv: list[str]) -> int:
    if argv != ["hash-password"]:
        print("usage: python -m headway.dashboard hash-password", file=sys.stderr)
        return 2
    password = getpass.getpass("Password (12+ characters): ")
    if getpass.getpass("Again: ") != password:
        print("the two passwords differ", file=sys.stderr)
        return 2
    try:
        print(hash_password(password))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
