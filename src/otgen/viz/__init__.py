"""Plots: 2D points (points.py), image grids (images.py), power diagrams (power.py)."""
