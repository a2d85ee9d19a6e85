"""Model preparation: what the ONNX model becomes before TensorRT parses it.

One small module per step (``opset``, ``constants``, ``dims``, ``fold``, ``cast``), the
key component and the tools it depends on (``options``), and one runner (``runner``) that
applies the steps in order, writes a report and keeps the prepared model content-addressed
in the cache (``<cache>/prepared/<digest>/model.onnx``). Pure ONNX work: nothing here
imports tensorrt, and onnx / onnx-graphsurgeon / ONNX Runtime are imported lazily.
"""
