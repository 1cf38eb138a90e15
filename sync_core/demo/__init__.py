"""Seeded, deterministic demo subscription platform that writes the public file-drop format."""
