"""Python half of `npm run bench`: PyTorch baselines, ONNX Runtime micro-measurements, analytic FLOPs."""
