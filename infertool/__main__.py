"""`python -m infertool` and the `infertool` script: an interrupt while the CLI is still being
imported ends it as one later does (exit 130, no traceback)."""

import sys


def cli() -> None:
    try:
        from infertool.cli.app import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    main()


if __name__ == "__main__":
    cli()
