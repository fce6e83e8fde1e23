"""art_purify: purification and sharpness-aware training defences for IBM's Adversarial Robustness Toolbox."""

__version__ = "0.1.0"
