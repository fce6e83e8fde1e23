"""Torch optimisers (SAM, ImbSAM, SSE-SAM arrive here). Importing this package stays light: no diffusers."""
__all__: list = []
