"""hilobench: which vision attention / backbone is fastest on this hardware, and at what cost."""

__version__ = "0.1.0"
