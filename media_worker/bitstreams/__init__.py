"""Codec bitstream headers read without decoding (no aiortc, no codec opened): VP8 and H.264
keyframes and their picture size, Opus packet durations and the Matroska ``OpusHead``. The
live path checks and sizes the frames it records with them (``media_worker/live``), the
post-processing sizes a track's keyframes (``media_worker/post/trackfile.py``)."""
