"""The ``miyabi-aws`` console script: the Rust command line, run inside this interpreter."""

import sys

from miyabi_aws._native import run_cli


def main() -> None:
    sys.exit(run_cli(sys.argv))


if __name__ == "__main__":
    main()
