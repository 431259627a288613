"""Small stateless ops on boxes and masks (numpy in, numpy out, inputs never modified)."""
