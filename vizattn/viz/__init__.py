"""Figures: numpy arrays in, images or figures out. Nothing here sees a model."""
