"""ART ``PreprocessorPyTorch`` defences (diffusion purification and reconstruction search arrive here)."""
__all__: list = []
