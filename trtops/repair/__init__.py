"""Accuracy repair (``trtops repair``): find a small set of ONNX nodes whose fp32 fallback
makes a reduced-precision engine pass its accuracy gate, and write it into the manifest.

One module per job: ``rank`` (which nodes first make the error grow, from intermediate
tensors compared with ONNX Runtime; pure), ``search`` (a small passing set within a build
budget; pure), ``probe`` (the model with intermediate tensors as outputs), ``patch`` (the
manifest edited as text). :mod:`trtops.ops.repair` runs them.
"""
