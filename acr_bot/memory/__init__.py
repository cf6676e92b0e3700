"""The memory file (tinydb), its migrations, and the memory branch."""
