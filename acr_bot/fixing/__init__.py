"""Fixing one task: the attempt loop, edits and the paths they may touch, context, prompts."""
