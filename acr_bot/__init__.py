"""acr-bot: fix failing code with the LLM your repo's own verified history says will work.

The public API is the library behind the `acr-bot` command: `app.fix`, `app.route`,
`memory.Memory`, `memory.merge`, and the routing policies in `router`.
"""

__version__ = "0.1.0"
