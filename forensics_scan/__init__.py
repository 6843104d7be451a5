"""fscan: tell genuine human speech from synthetic speech, every 5 seconds."""

__version__ = "0.1.0"
