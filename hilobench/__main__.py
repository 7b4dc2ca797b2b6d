"""``python -m hilobench``: the same command line as the ``hilobench`` script."""

from hilobench.cli import main

if __name__ == "__main__":
    main()
