"""The `genja-coordinator` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genja-coordinator", description="Run a genja coordinator server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve runs to clients and work to agents")
    parser.parse_args(argv)
    print("genja-coordinator serve: not available yet", file=sys.stderr)
    return 2
