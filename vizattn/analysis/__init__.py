"""Analyses over capture records: numbers and arrays out, no plotting."""
