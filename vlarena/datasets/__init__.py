"""Pure scene and episode data: procedural apartments, file formats (no torch)."""
