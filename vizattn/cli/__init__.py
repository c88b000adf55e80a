"""The `vizattn` command: thin argparse wrappers over library functions; user errors print one sentence."""
from __future__ import annotations

import argparse
import sys

from vizattn.cli.bench import add_bench
from vizattn.cli.commands import add_commands
from vizattn.errors import VizattnError
from vizattn.text import plain


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vizattn", description="See what attention modules attend.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench(sub)
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except VizattnError as err:
        print(f"vizattn: {plain(err, 4000)}", file=sys.stderr)
        return 2
    except OSError as err:  # a disk full, a folder without permission: the user's to fix, in one sentence
        print(f"vizattn: {err.strerror or err} ({getattr(err, 'filename', '') or 'no file named'}); nothing more "
              "was written.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vizattn: interrupted; files already written stay.", file=sys.stderr)
        return 130
    return 0
