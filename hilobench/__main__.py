"""``python -m hilobench``: the same command line as the ``hilobench`` script."""

import sys

try:
    from hilobench.cli.app import main
except KeyboardInterrupt:  # Ctrl-C while still starting up: nothing was done yet
    sys.exit(130)

if __name__ == "__main__":
    main()
