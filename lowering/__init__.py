"""Models, reparameterization, quantization, exporters and verification."""
