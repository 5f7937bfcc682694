"""Stage 4, the book: figures (``plots``) and the build (``build``: trains the book's models, executes every
chapter, writes the HTML)."""
