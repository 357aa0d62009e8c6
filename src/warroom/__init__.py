"""warroom: a terminal war-room console for running launches."""

__version__ = "0.1.0"
