"""ART ``Trainer`` classes (AToP and the sharpness-aware long-tailed trainer arrive here)."""
__all__: list = []
