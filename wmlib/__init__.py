"""wmlib: a world model for audio, and the tools to ask what it learned.

Data flows one way: corpus -> features (log-mel tokens with labels) -> world model -> latents -> analyses.
"""
__version__ = "0.1.0"
