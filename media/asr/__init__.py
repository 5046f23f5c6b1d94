"""Speech recognition engines behind one streaming interface (see ``media.asr.base``)."""
