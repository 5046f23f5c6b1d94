"""Sans-I/O audio pipeline over 20 ms frames of 8 kHz int16 samples."""
