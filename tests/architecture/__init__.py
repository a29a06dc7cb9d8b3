"""Tests of the shape of the code: layering, import cycles, private names."""
