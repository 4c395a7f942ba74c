"""Connection layer: URLs, TLS contexts and dialing; knows bytes, not frames."""
